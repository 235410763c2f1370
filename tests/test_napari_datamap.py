"""The data map at scale: a density raster above RASTER_MIN spots, a scatter below, exact brushing in both."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")

from conftest import needs_display  # noqa: E402

from napari_annotatability.core import keys  # noqa: E402

pytestmark = needs_display


def _spots(viewer, n, seed=0):
    """A Points layer of n spots whose AnnData has confidence, variability and a category."""
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    conf = rng.beta(4.0, 1.2, n)
    var = np.sqrt(conf * (1 - conf)) * rng.uniform(0.2, 0.9, n)
    cat = np.where(conf > 0.9, "correct", np.where(conf < 0.3, "erroneous", "ambiguous"))
    obs = pd.DataFrame({keys.CONFIDENCE: conf, keys.VARIABILITY: var,
                        keys.CATEGORY: pd.Categorical(cat, categories=list(keys.CATEGORIES))},
                       index=np.arange(n).astype(str))
    adata = ad.AnnData(obs=obs)
    adata.uns[f"{keys.CATEGORY}_colors"] = list(keys.CATEGORY_COLORS)
    return viewer.add_points(rng.random((n, 2)) * 5000, size=5, metadata={"adata": adata})


def _lasso(cx, cy, rx, ry, m=40):
    t = np.linspace(0, 2 * np.pi, m, endpoint=False)
    return np.column_stack([cx + rx * np.cos(t), cy + ry * np.sin(t)])


def test_200000_spots_draw_a_density_raster_and_a_lasso_selects_exactly_the_spots_inside(make_napari_viewer):
    from matplotlib.image import AxesImage
    from matplotlib.path import Path

    from napari_annotatability._napari._datamap import OVERLAY_POINTS_MAX, RASTER_BINS, DataMapWidget

    viewer = make_napari_viewer()
    layer = _spots(viewer, 200_000)
    dm = DataMapWidget(viewer)
    assert dm.layer is layer and dm.raster and isinstance(dm._base, AxesImage)
    dm.canvas.draw()
    # the raster is the 2-D histogram of (variability, confidence): a bin shows iff it holds spots
    x0, x1, y0, y1 = dm._extent
    xy = dm._xy
    hist, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=RASTER_BINS, range=[[x0, x1], [y0, y1]])
    rgba = dm._base.get_array()
    assert rgba.shape == (RASTER_BINS[1], RASTER_BINS[0], 4)
    np.testing.assert_array_equal(rgba[..., 3] > 0, hist.T > 0)
    # opacity grows with the (log) count
    filled = hist.T > 0
    order = np.argsort(hist.T[filled])
    assert np.all(np.diff(rgba[..., 3][filled][order]) >= -1e-12)

    # lasso: exactly the spots whose values lie inside the path, on the tissue and in the map
    verts = _lasso(0.22, 0.55, 0.05, 0.1)
    expected = np.flatnonzero(Path(verts).contains_points(xy))
    assert 1000 < expected.size < 50_000
    picked = dm.select_in_map(verts)
    np.testing.assert_array_equal(picked, expected)
    assert layer.selected_data == set(expected.tolist())
    np.testing.assert_array_equal(dm.selected, expected)
    dm.canvas.draw()
    # highlighted: the whole map faded, the selected spots' own raster on top
    assert dm._sel_image.get_visible()
    sel_hist, _, _ = np.histogram2d(xy[expected, 0], xy[expected, 1], bins=RASTER_BINS, range=[[x0, x1], [y0, y1]])
    np.testing.assert_array_equal(dm._sel_image.get_array()[..., 3] > 0, sel_hist.T > 0)
    assert dm._base.get_array()[..., 3].max() <= 0.25 + 1e-12

    # tissue -> map: a small selection on the layer is also outlined spot by spot
    layer.selected_data = {3, 5, 8}
    np.testing.assert_array_equal(dm.selected, [3, 5, 8])
    np.testing.assert_array_equal(dm._overlay.get_offsets(), xy[[3, 5, 8]])
    assert 3 <= OVERLAY_POINTS_MAX
    dm.clear_selection()
    assert layer.selected_data == set() and dm.selected.size == 0 and not dm._sel_image.get_visible()
    assert dm._base.get_array()[..., 3].max() == pytest.approx(1.0)


def test_below_the_threshold_the_map_is_a_scatter_of_every_spot(make_napari_viewer, monkeypatch):
    from matplotlib.collections import PathCollection

    from napari_annotatability._napari import _datamap

    monkeypatch.setattr(_datamap, "RASTER_MIN", 3000)
    viewer = make_napari_viewer()
    layer = _spots(viewer, 3000)
    dm = _datamap.DataMapWidget(viewer)
    assert dm.layer is layer and not dm.raster and isinstance(dm._base, PathCollection)
    assert len(dm._base.get_offsets()) == 3000  # n == RASTER_MIN: still a scatter
    picked = dm.select_in_map([(0, 0.9), (1, 0.9), (1, 1.1), (0, 1.1)])
    conf = layer.metadata["adata"].obs[keys.CONFIDENCE].to_numpy()
    np.testing.assert_array_equal(picked, np.flatnonzero(conf > 0.9))
    # the map fades; the picked spots are drawn over it in full colour
    assert dm._base.get_facecolors()[:, 3].max() < 0.5
    np.testing.assert_array_equal(dm._sel_points.get_offsets(), dm._xy[picked])
    assert dm._sel_points.get_facecolors()[:, 3].min() == 1.0
    # one spot more and the same layer is drawn as a raster; brushing gives the same spots
    monkeypatch.setattr(_datamap, "RASTER_MIN", 2999)
    dm.redraw()
    assert dm.raster
    np.testing.assert_array_equal(dm.select_in_map([(0, 0.9), (1, 0.9), (1, 1.1), (0, 1.1)]), picked)


@pytest.mark.parametrize("raster", [True, False])
def test_stepping_from_spot_to_spot_blits_the_same_picture_a_full_draw_gives(make_napari_viewer, monkeypatch, raster):
    """The review queue selects one spot after another: only the selection is redrawn, and the
    canvas then holds exactly what a full redraw of the map would draw."""
    from napari_annotatability._napari import _datamap

    monkeypatch.setattr(_datamap, "RASTER_MIN", 1000 if raster else 5000)
    viewer = make_napari_viewer()
    layer = _spots(viewer, 3000)
    dm = _datamap.DataMapWidget(viewer)
    assert dm.raster is raster
    dm.canvas.resize(360, 340)
    layer.selected_data = {3}
    dm.canvas.draw()  # the faded map is drawn and cached
    full_draws = []
    monkeypatch.setattr(dm.canvas, "draw_idle", lambda: full_draws.append(1))
    layer.selected_data = {7}
    assert full_draws == [] and dm.selected.tolist() == [7]
    blitted = np.asarray(dm.canvas.buffer_rgba()).copy()
    monkeypatch.undo()
    dm.canvas.draw()
    np.testing.assert_array_equal(blitted, np.asarray(dm.canvas.buffer_rgba()))
    # clearing the selection changes the map itself (no longer faded): a full draw
    calls = []
    monkeypatch.setattr(dm.canvas, "draw_idle", lambda: calls.append(1))
    dm.clear_selection()
    assert calls == [1]
