"""Cells drawn as a segmentation mask: id <-> row maps, colour classes, selection, colouring a Labels layer."""

from __future__ import annotations

import anndata as ad
import dask.array as da
import numpy as np
import pandas as pd
import pytest

from napari_annotatability._napari import _mask
from napari_annotatability._napari._mask import CellMask, quantise_colors


def _grid_mask(n_side=6, cell=4, offset=0):
    """A mask of n_side x n_side square cells, ``cell`` px each, ids 1 + offset ... ."""
    r = np.arange(n_side * cell)[:, None] // cell
    c = np.arange(n_side * cell)[None, :] // cell
    return (r * n_side + c + 1 + offset).astype(np.int32)


def test_display_levels_map_every_pixel_to_its_cells_colour_class():
    raw = _grid_mask()
    raw[0, 0] = 0  # background
    ids = np.arange(1, 37)
    mask = CellMask([raw, raw[::2, ::2]], ids)
    rgba = np.zeros((36, 4))
    rgba[:, 3] = 1
    rgba[ids % 2 == 0, 0] = 1.0  # even ids red, odd black
    colormap = mask.set_colors(rgba)
    shown = mask.display_levels()
    assert all(isinstance(lv, da.Array) for lv in shown)
    level0 = np.asarray(shown[0])
    assert level0.dtype == np.uint16 and level0[0, 0] == 0
    red = colormap.map(level0[4, 0])  # row 1, col 0 -> id 7 (odd): black
    assert np.allclose(red[:3], 0)
    assert np.allclose(colormap.map(level0[0, 4])[:3], (1, 0, 0))  # id 2: red
    assert np.asarray(shown[1]).shape == (12, 12)
    # background and label ids with no row are transparent
    assert colormap.map(0)[3] == 0


def test_sparse_ids_and_ids_not_in_the_table():
    raw = _grid_mask(offset=10_000_000)  # ids far beyond 8 x rows: searched, not a dense table
    ids = np.arange(1, 37) + 10_000_000
    mask = CellMask(raw, ids[:30])  # the last six cells have no row
    assert not mask.ids.dense
    mask.set_colors(np.tile([0.2, 0.4, 0.6, 1.0], (30, 1)))
    shown = np.asarray(mask.display_levels()[0])
    assert (shown[raw <= ids[29]] == 1).all() and (shown[raw > ids[29]] == 0).all()
    assert mask.row_at((0, 0)) == 0
    assert mask.row_at((23, 23)) is None  # id 36 has no row
    assert mask.row_at((100, 0)) is None and mask.row_at((-1, 0)) is None
    np.testing.assert_array_equal(mask.rows_of_ids([ids[3], 5, 0]), [3, -1, -1])


def test_row_at_and_selection_follow_the_table_order():
    raw = _grid_mask()
    ids = np.random.default_rng(0).permutation(np.arange(1, 37))  # table rows in another order
    mask = CellMask(raw, ids)
    row = mask.row_at((9, 14))  # pixel of cell id 2*6 + 3 + 1 = 16
    assert ids[row] == 16
    mask.set_selected([row])
    sel = np.asarray(mask.selection_levels()[0])
    assert sel.dtype == np.uint8 and sel.sum() == 16 and (sel[raw == 16] == 1).all()
    mask.set_selected(np.zeros(36, dtype=bool))
    assert np.asarray(mask.selection_levels()[0]).sum() == 0


def test_row_at_reads_every_pixel_right_across_windows_and_rereads_only_a_new_window(monkeypatch):
    """Hovering reads pixel after pixel: each through the window that holds it, read once while it stays."""
    monkeypatch.setattr(_mask, "_WINDOW", 11)  # windows of 11 px: 3 x 3 of them, the last ones cut short
    raw = _grid_mask(n_side=10, cell=3)  # 30 x 30 px, ids 1..100
    lazy = da.from_array(raw, chunks=((7, 7, 16), (13, 17)))  # blocks unlike the windows, as a store's are
    mask = CellMask(lazy, np.arange(1, 101))
    reads = []
    compute = da.Array.compute
    monkeypatch.setattr(da.Array, "compute", lambda self, **kw: reads.append(self.shape) or compute(self, **kw))
    for r in range(30):
        for c in range(30):
            assert mask.row_at((r, c)) == raw[r, c] - 1
    assert len(reads) == 30 * 3  # each row of pixels enters 3 windows; within one, no reread
    reads.clear()
    for _ in range(5):
        assert mask.row_at((8, 12)) == raw[8, 12] - 1  # the cursor resting on one cell
    assert reads == [(11, 11)]  # window (0, 1), read once
    assert mask.row_at((29, 29)) == raw[29, 29] - 1 and reads[-1] == (8, 8)  # the last window, cut short


def test_centroids_are_each_cells_centre_of_mass_block_by_block():
    raw = _grid_mask(n_side=6, cell=4)
    ids = np.arange(1, 38)  # id 37 is not in the mask: NaN
    mask = CellMask(da.from_array(raw, chunks=(5, 7)), ids)  # blocks cut through cells
    cents = mask.centroids()
    np.testing.assert_allclose(cents[0], (1.5, 1.5))
    np.testing.assert_allclose(cents[7], (5.5, 5.5))  # id 8: grid row 1, col 1
    assert np.isnan(cents[36]).all()


def test_recolouring_gives_fresh_lazy_arrays():
    mask = CellMask(_grid_mask(), np.arange(1, 37))
    mask.set_colors(np.tile([1.0, 0, 0, 1], (36, 1)))
    first = mask.display_levels()[0]
    mask.set_colors(np.tile([0, 1.0, 0, 1], (36, 1)))
    second = mask.display_levels()[0]
    assert first.name != second.name  # a dask cache can never serve the old colouring


def test_quantise_colors_merges_equal_colours_and_bounds_classes():
    rgba = np.array([[1, 0, 0, 1], [1, 0, 0, 1], [0, 0, 1, 1], [np.nan, 0, 0, 1]], dtype=float)
    codes, palette = quantise_colors(rgba)
    assert codes[0] == codes[1] != codes[2] and codes.min() == 1
    assert len(palette) == 3
    rng = np.random.default_rng(0)
    codes, palette = quantise_colors(rng.random((10_000, 3)))  # (n, 3) -> opaque
    assert np.allclose(palette[:, 3], 1.0) and codes.max() == len(palette)


@pytest.mark.parametrize("bad, match", [
    (dict(levels=[np.zeros((4, 4), dtype=float)], ids=[1]), "integer label ids"),
    (dict(levels=[np.zeros((2, 4, 4), dtype=int)], ids=[1]), "2-D"),
    (dict(levels=[np.zeros((4, 4), dtype=int)], ids=[1, 1]), "more than one table row"),
    (dict(levels=[np.zeros((4, 4), dtype=int)], ids=[-3]), "non-negative"),
    (dict(levels=[], ids=[1]), "at least one level"),
])
def test_bad_masks_say_what_is_wrong(bad, match):
    with pytest.raises(ValueError, match=match):
        CellMask(bad["levels"], np.asarray(bad["ids"]))


def test_wrong_number_of_colours_is_refused():
    mask = CellMask(_grid_mask(), np.arange(1, 37))
    with pytest.raises(ValueError, match="35 colours for a mask of 36"):
        mask.set_colors(np.ones((35, 4)))


def test_too_many_colour_classes_is_refused(monkeypatch):
    monkeypatch.setattr(_mask, "MAX_CODES", 10)
    with pytest.raises(ValueError, match="at most 10"):
        quantise_colors(np.random.default_rng(0).random((100, 4)))


@pytest.fixture
def mask_layer(make_napari_viewer):
    viewer = make_napari_viewer()
    raw = _grid_mask()
    n = 36
    obs = pd.DataFrame({
        "label": pd.Categorical(np.where(np.arange(n) < 18, "a", "b")),
        "annot_confidence": np.linspace(0, 1, n).astype("float32"),
    }, index=[f"c{i}" for i in range(n)])
    adata = ad.AnnData(obs=obs)
    adata.uns["label_colors"] = ["#ff0000", "#0000ff"]
    mask = CellMask([raw, raw[::2, ::2]], np.arange(1, n + 1))
    layer = viewer.add_labels(mask.display_levels(), multiscale=True, metadata={"adata": adata, "mask": mask})
    return viewer, layer, adata, raw


def _shown_rgba(layer, level0_pixel):
    """The colour the layer gives the pixel at level 0 (row, col)."""
    data = layer.data[0]
    return np.asarray(layer.colormap.map(np.asarray(data[level0_pixel])))


def test_color_by_a_category_colours_each_cell_on_the_mask(mask_layer):
    from napari_annotatability._napari._colors import color_by

    _, layer, adata, raw = mask_layer
    colors = color_by(layer, adata, "label")
    assert colors == {"a": "#ff0000", "b": "#0000ff"}
    assert layer.metadata["color_by"] == "label" and layer.metadata["colorbar"] is None
    assert np.allclose(_shown_rgba(layer, (0, 0))[:3], (1, 0, 0))  # cell 1: row 0 -> "a"
    assert np.allclose(_shown_rgba(layer, (23, 23))[:3], (0, 0, 1))  # cell 36: row 35 -> "b"


def test_color_by_a_score_uses_a_colormap_and_records_its_colorbar(mask_layer):
    from matplotlib import colormaps

    from napari_annotatability._napari._colors import color_by, sync_features

    _, layer, adata, _ = mask_layer
    assert color_by(layer, adata, "annot_confidence") is None
    assert layer.metadata["colorbar"] == {"key": "annot_confidence", "colormap": "viridis", "limits": (0.0, 1.0)}
    assert np.allclose(_shown_rgba(layer, (23, 23))[:3], colormaps["viridis"](1.0)[:3], atol=1 / 255)
    # live values during a training colour the mask without touching the AnnData
    sync_features(layer, adata, {"annot_confidence": np.zeros(36)})
    color_by(layer, adata, "annot_confidence")
    assert np.allclose(_shown_rgba(layer, (23, 23))[:3], colormaps["viridis"](0.0)[:3], atol=1 / 255)
    assert adata.obs["annot_confidence"].iloc[-1] == pytest.approx(1.0)
    sync_features(layer, adata)  # the training ended: back to the AnnData's values
    color_by(layer, adata, "annot_confidence")
    assert np.allclose(_shown_rgba(layer, (23, 23))[:3], colormaps["viridis"](1.0)[:3], atol=1 / 255)


def test_a_layer_showing_some_rows_colours_only_those(make_napari_viewer):
    from napari_annotatability._napari._colors import color_by

    viewer = make_napari_viewer()
    raw = _grid_mask()
    obs = pd.DataFrame({"label": pd.Categorical(["a"] * 36 + ["b"] * 36)}, index=[f"c{i}" for i in range(72)])
    adata = ad.AnnData(obs=obs)  # two sections of 36 cells; this layer shows the second
    adata.uns["label_colors"] = ["#ff0000", "#0000ff"]
    mask = CellMask(raw, np.arange(1, 37))
    layer = viewer.add_labels(mask.display_levels()[0],
                              metadata={"adata": adata, "mask": mask, "rows": np.arange(36, 72)})
    color_by(layer, adata, "label")
    shown = np.asarray(layer.data)
    assert np.allclose(layer.colormap.map(shown[5, 5])[:3], (0, 0, 1))


def test_attach_a_label_image_to_a_table_keyed_by_label_id(make_napari_viewer, qtbot):
    """A label TIFF opened as Labels + a per-cell table: cells drawn on the mask, in the mask's world."""
    from napari_annotatability._napari._attach import AttachMaskWidget, attach_mask, id_columns
    from napari_annotatability.core.errors import AnnotatabilityInputError

    viewer = make_napari_viewer()
    raw = _grid_mask()  # 36 cells, 4 px each
    seg = viewer.add_labels(raw, name="segmentation", scale=(0.5, 0.5), translate=(100, 200))
    rng = np.random.default_rng(0)
    order = rng.permutation(36)
    obs = pd.DataFrame({"cell_id": (np.arange(1, 37)[order]).astype(np.int64),
                        "label": pd.Categorical(np.where(order < 18, "a", "b")),
                        "score": rng.random(36)}, index=[f"c{i}" for i in range(36)])
    obs.loc["c0", "cell_id"] = 999  # not in the mask: reported, not drawn
    adata = ad.AnnData(obs=obs)
    cells = viewer.add_points(np.zeros((36, 2)), metadata={"adata": adata, "color_by": "label"}, name="table")
    assert id_columns(adata)[0] == "cell_id" and "score" not in id_columns(adata)
    with pytest.raises(AnnotatabilityInputError, match="unique non-negative integers"):
        attach_mask(viewer, seg, cells, "score")
    layer = attach_mask(viewer, seg, cells, "cell_id")
    assert layer.metadata["adata"] is adata and not seg.visible
    mask = layer.metadata["mask"]
    # row 1's cell (id order[1] + 1) lies where the segmentation has it, in world coordinates
    cid = obs["cell_id"].iloc[1]
    r, c = divmod(cid - 1, 6)
    expected = np.array([100 + 0.5 * (4 * r + 1.5), 200 + 0.5 * (4 * c + 1.5)])
    np.testing.assert_allclose(layer.metadata["centroids"][1], expected)
    assert np.isnan(layer.metadata["centroids"][0]).all()
    data_pos = layer.world_to_data(expected)
    assert mask.row_at(data_pos) == 1
    assert layer.metadata["color_by"] == "label"
    # the dock does the same from its form
    form = AttachMaskWidget(viewer)
    assert form[0].value is seg and form[1].value is cells and form[2].value == "cell_id"
    from qtpy.QtCore import Qt

    before = len(viewer.layers)
    qtbot.mouseClick(form.button.native, Qt.MouseButton.LeftButton)  # "Draw cells as the mask"
    made = viewer.layers[-1]
    assert len(viewer.layers) == before + 1 and made.metadata["mask"].n_obs == 36
    assert form.status.value.endswith("36 cells")


def test_the_legend_shows_a_mask_colorbar_and_then_categories_again(make_napari_viewer):
    from napari_annotatability._napari._legend import show_colorbar, show_legend, viewer_legend

    viewer = make_napari_viewer()
    show_colorbar(viewer, "annot_confidence", "viridis", (0.0, 1.0))
    legend = viewer_legend(viewer)
    assert legend.colorbar == ("viridis", (0.0, 1.0)) and legend.entries == []
    show_legend(viewer, "label", {"a": "#ff0000", "b": "#0000ff"}, {"a": 3, "b": 4})
    assert legend.colorbar is None and [e[0] for e in legend.entries] == ["a", "b"]
