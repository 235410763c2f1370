"""Every dock on a Labels layer of cells (a segmentation mask) as on spots, through the cell model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")

from cell_layers import OFFSET, PIXEL, add_cells_layer, cell_ids  # noqa: E402
from conftest import needs_display  # noqa: E402

from napari_annotatability.core import keys  # noqa: E402

pytestmark = needs_display


@pytest.fixture
def cells(make_napari_viewer):
    """A viewer with a scored mask of 300 cells; the layer and its model."""
    from napari_annotatability._napari._model import cell_model

    viewer = make_napari_viewer(show=True)
    layer = add_cells_layer(viewer, scored=True)
    return viewer, layer, cell_model(viewer).get(layer)


def _click(layer, world):
    """A press and release at ``world`` (no drag) through the layer's mouse callbacks."""
    from types import SimpleNamespace

    from napari.utils._proxies import ReadOnlyWrapper
    from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

    def event(kind):
        return ReadOnlyWrapper(SimpleNamespace(type=kind, position=tuple(world), view_direction=None,
                                               dims_displayed=[0, 1], modifiers=[], button=1, handled=False,
                                               is_dragging=False))

    mouse_press_callbacks(layer, event("mouse_press"))
    mouse_release_callbacks(layer, event("mouse_release"))


def _outline_at(cell, row) -> int:
    """The outline layer's value (full resolution) at the centre pixel of obs row ``row``."""
    r, c = np.round((cell.world_position(row) - OFFSET) / PIXEL).astype(int)
    return int(np.asarray(cell.outline.data[0][r, c]))


def test_the_model_sees_the_mask_as_a_layer_of_cells(cells):
    viewer, layer, cell = cells
    adata = layer.metadata["adata"]
    assert cell is not None and cell.kind == "cells" and cell.n == adata.n_obs
    # the cell under a world position is read from the mask at full resolution
    for row in (0, 17, adata.n_obs - 1):
        centre = cell.world_position(row)
        assert cell.row_at_world(centre) == row
        assert cell.row_at_world(centre + 2.4 * PIXEL) == row  # still inside its 7 x 7 px square
        assert cell.row_at_world(centre + 4 * PIXEL) is None  # the background between cells
    assert set(cell.neighbours(17, 4)) <= set(range(adata.n_obs)) and 17 not in cell.neighbours(17, 4)


def test_training_on_the_mask_recolours_it_live(make_napari_viewer, qtbot, monkeypatch):
    monkeypatch.setattr("napari_annotatability._napari._live.LIVE_DUTY", 1e9)  # no throttling: every epoch
    viewer = make_napari_viewer(show=True)
    layer = add_cells_layer(viewer)
    _, widget = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability")
    assert widget.layer_combo.value is layer and widget.label_combo.value == "label"
    widget.adaptive.value = False
    widget.epochs.value = 6
    palettes = []
    worker = widget.train(start=False)
    worker.yielded.connect(lambda p: p.stage == "training" and palettes.append(layer.metadata["mask"].palette.copy()))
    assert layer.metadata["training"]
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        worker.start()
    adata = layer.metadata["adata"]
    assert widget.live_recolours == 6 and len(palettes) == 6
    assert not np.array_equal(palettes[0], palettes[-1])  # the colours followed the confidence
    assert keys.CONFIDENCE in adata.obs and not layer.metadata["training"]
    # coloured by category at the end: each cell's colour class is its category's colour
    assert layer.metadata["color_by"] == keys.CATEGORY
    assert [e[0] for e in widget.legend.entries] == list(keys.CATEGORIES)
    mask = layer.metadata["mask"]
    from matplotlib.colors import to_rgba

    colors = dict(zip(keys.CATEGORIES, keys.CATEGORY_COLORS))
    cats = adata.obs[keys.CATEGORY].astype(str).to_numpy()
    expected = np.array([to_rgba(colors[c]) for c in cats])
    np.testing.assert_allclose(mask.palette[mask.codes - 1], expected, atol=1 / 255)
    widget.color_buttons["Confidence"].click()
    assert layer.metadata["color_by"] == keys.CONFIDENCE


def test_data_map_lasso_outlines_the_cells_and_a_click_shows_in_the_map(cells):
    viewer, layer, cell = cells
    adata = layer.metadata["adata"]
    dm = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability data map")[1]
    insp = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability spot inspector")[1]
    assert dm.layer is layer and len(dm._xy) == adata.n_obs
    conf = adata.obs[keys.CONFIDENCE].to_numpy()
    cut = float(np.median(conf))
    picked = dm.select_in_map([(-1, -1), (2, -1), (2, cut), (-1, cut)])  # the less confident half
    expected = np.flatnonzero(conf <= cut)
    assert 0 < expected.size < adata.n_obs
    np.testing.assert_array_equal(np.sort(picked), expected)
    np.testing.assert_array_equal(cell.selection(), expected)
    # outlined on the mask: a second Labels layer, 1 inside the selected cells only
    assert cell.outline is not None and cell.outline.visible and cell.outline.contour > 0
    other = np.setdiff1d(np.arange(adata.n_obs), expected)[0]
    assert _outline_at(cell, expected[0]) == 1 and _outline_at(cell, other) == 0
    # a click on a cell (pan/zoom mode) selects it: the map and the inspector follow
    row = int(other)
    _click(layer, cell.world_position(row) + 1.5 * PIXEL)
    np.testing.assert_array_equal(cell.selection(), [row])
    np.testing.assert_array_equal(dm.selected, [row])
    assert adata.obs_names[row] in insp.title.text()
    assert insp.values["confidence"].text() == f"{conf[row]:.3f}"
    dm.clear_selection()
    assert cell.selection().size == 0 and not cell.outline.visible


def test_a_drawn_shape_selects_the_cells_inside_and_the_region_inspector_reads_them(cells):
    viewer, layer, cell = cells
    adata = layer.metadata["adata"]
    region = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability region inspector")[1]
    centres = layer.metadata["centroids"]
    lo = centres.min(axis=0)
    shapes = viewer.add_shapes(name="regions")
    shapes.add_rectangles(np.array([lo - 1, lo + 900]))
    inside = np.flatnonzero(((centres >= lo - 1) & (centres <= lo + 900)).all(axis=1))
    assert 5 < inside.size < adata.n_obs / 2
    np.testing.assert_array_equal(cell.selection(), inside)
    assert region.summary is not None and region.summary.n_cells == inside.size
    obs = adata.obs.iloc[inside]
    assert region.summary.categories == {c: int((obs[keys.CATEGORY] == c).sum()) for c in keys.CATEGORIES}


def test_genes_and_communities_colour_the_mask(cells, qtbot):
    viewer, layer, cell = cells
    adata = layer.metadata["adata"]
    genes = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability genes")[1]
    assert genes.layer_combo.value is layer and genes.genes
    gene = genes.genes[0]
    genes.show_gene(gene)
    mask = layer.metadata["mask"]
    expr = np.asarray(adata[:, gene].X).ravel()
    assert layer.metadata["color_by"] == f"{gene} expression"
    shown = mask.palette[mask.codes - 1]
    assert not np.allclose(shown[np.argmin(expr)], shown[np.argmax(expr)])


def test_curation_reviews_and_relabels_cells_of_the_mask(cells, monkeypatch):
    from napari_annotatability._napari._cells import view_camera

    viewer, layer, cell = cells
    adata = layer.metadata["adata"]
    messages = []
    monkeypatch.setattr("napari.utils.notifications.show_error", messages.append)
    dock = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability curation")[1]
    assert dock.layer_combo.value is layer and dock.key_combo.value == "label"
    queue = dock.start_review("suspicious")
    assert queue is not None and len(queue), messages
    first = queue.current
    # centred on the cell under review, which is selected (outlined) on the mask
    np.testing.assert_allclose(view_camera(viewer).center[-2:], cell.world_position(first))
    np.testing.assert_array_equal(cell.selection(), [first])
    assert _outline_at(cell, first) == 1
    dock.relabel_current("cortex" if adata.obs["label"].iloc[first] != "cortex" else "medulla")
    assert adata.obs["label_curated"].iloc[first] != adata.obs["label"].iloc[first]
    assert queue.current != first and list(cell.selection()) == [queue.current]
    # a selection of cells relabelled at once, one undo takes them back
    cell.select([1, 2, 3])
    assert dock.relabel_group("selected cells", label="cortex") >= 0 and not messages
    assert (adata.obs["label_curated"].iloc[[1, 2, 3]] == "cortex").all()
    dock.undo()
    assert list(adata.obs["label_curated"].iloc[[1, 2, 3]]) == list(adata.obs["label"].iloc[[1, 2, 3]])


def test_exports_write_cell_polygons_and_cell_groups(cells, tmp_path):
    import anndata as ad

    viewer, layer, cell = cells
    adata = layer.metadata["adata"]
    viewer.layers.selection.active = layer
    out = tmp_path / "cells.geojson"
    assert viewer.layers.save(str(out), selected=True, plugin="napari-annotatability") == [str(out)]
    doc = json.loads(out.read_text())
    feats = doc["features"]
    assert len(feats) == adata.n_obs and feats[0]["geometry"]["type"] == "Polygon"
    ring = np.asarray(feats[5]["geometry"]["coordinates"][0])
    np.testing.assert_allclose(ring.mean(axis=0)[::-1], cell.world_position(5), atol=PIXEL)  # x, y of its square
    np.testing.assert_allclose(np.ptp(ring, axis=0), (7 * PIXEL, 7 * PIXEL))
    assert feats[5]["properties"][keys.CATEGORY] == str(adata.obs[keys.CATEGORY].iloc[5])
    # cell groups for Xenium Explorer: cell_id, group (the category unless coloured by a category)
    cell.color_by("label")
    groups = tmp_path / "cells.groups.csv"
    assert viewer.layers.save(str(groups), selected=True, plugin="napari-annotatability") == [str(groups)]
    table = pd.read_csv(groups)
    assert list(table.columns) == ["cell_id", "group"] and len(table) == adata.n_obs
    assert list(table["cell_id"]) == list(adata.obs_names) and list(table["group"]) == list(adata.obs["label"])
    # the AnnData, and nothing else next to them
    h5ad = tmp_path / "cells.h5ad"
    assert viewer.layers.save(str(h5ad), selected=True, plugin="napari-annotatability") == [str(h5ad)]
    np.testing.assert_array_equal(ad.read_h5ad(h5ad).obs[keys.CONFIDENCE], adata.obs[keys.CONFIDENCE])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.geojson", "cells.groups.csv", "cells.h5ad"]


def test_a_mask_switches_to_centroid_points_and_back(cells):
    viewer, layer, cell = cells
    adata = layer.metadata["adata"]
    _, widget = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability")
    widget.layer_combo.value = layer
    cell.color_by(keys.CATEGORY)
    cell.select([4, 9])
    points = widget.toggle_points()
    assert points is not layer and not layer.visible and points.visible
    assert len(points.data) == adata.n_obs and points.metadata["adata"] is adata
    np.testing.assert_allclose(points.data, layer.metadata["centroids"])
    assert points.metadata["color_by"] == keys.CATEGORY and points.selected_data == {4, 9}
    assert widget.layer_combo.value is points
    assert widget.toggle_points() is layer and layer.visible and not points.visible
    assert len([lyr for lyr in viewer.layers if lyr.metadata.get("adata") is adata]) == 2  # made once


def test_a_closed_dock_no_longer_listens(cells):
    viewer, layer, cell = cells
    model = cell.model
    dock, dm = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability data map")
    before = len(model.selection_changed)
    calls = []
    dm.highlight = lambda rows: calls.append(rows)  # what a selection runs in the dock
    cell.select([1])
    assert len(calls) == 1
    viewer.window.remove_dock_widget(dock)  # the dock's close button
    assert dm.link.closed and len(model.selection_changed) < before
    cell.select([2, 3])
    model.layers_changed.emit()
    assert len(calls) == 1  # nothing ran after the close
    assert cell_ids(3)[-1] == 25  # (ids are not rows: 7 * row + 11)


def test_the_status_bar_names_the_cell_under_the_cursor_not_a_colour_code(cells):
    """The mask shows colour classes: hovering must still say which cell it is and its value."""
    viewer, layer, cell = cells
    adata = layer.metadata["adata"]
    cell.color_by(keys.CATEGORY)
    centre = cell.world_position(17)
    status = layer.get_status(centre, world=True)
    expected = f"{adata.obs_names[17]} · {keys.CATEGORY}: {adata.obs[keys.CATEGORY].iloc[17]}"
    assert status["value"] == expected and status["coordinates"].endswith(expected)
    assert layer._get_tooltip_text(centre, world=True) == expected
    assert layer.get_status(centre + 4 * PIXEL, world=True)["value"] == "no cell"  # between cells
    # what napari's status bar shows with the cursor there
    viewer.mouse_over_canvas = True
    viewer.cursor.position = tuple(centre)
    status, _tooltip = viewer._calc_status_from_cursor()
    assert expected in status["coordinates"]
    # a second wrapper of the same layer (a re-attach) takes over; the first one's detach leaves it be
    from napari_annotatability._napari._cell_kinds import MaskCells

    again = MaskCells(cell.model, layer)
    cell.detach()
    assert layer.get_status(centre, world=True)["value"] == expected
    again.detach()  # the layer left the model: napari's own status again
    assert "get_status" not in layer.__dict__ and layer.get_status(centre, world=True)["value"] != expected
