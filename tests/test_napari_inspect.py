"""Inspect docks after a training: data map brushing both ways, region inspector, genes table."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")

from conftest import needs_display, train_and_wait  # noqa: E402

from napari_annotatability.core import keys  # noqa: E402

pytestmark = [needs_display, pytest.mark.slow]  # every test trains through the widget


@pytest.fixture
def trained(make_napari_viewer, qtbot):
    """The demo sample, trained through the widget (short run), with the inspect docks open."""
    from napari_annotatability._napari._demo import open_demo

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1400, 900)
    viewer, widget = open_demo(viewer)
    docks = {text: widget.open_dock(name) for text, name in
             (("map", "Annotatability data map"), ("region", "Annotatability region inspector"),
              ("genes", "Annotatability genes"))}
    assert docks["map"].layer is widget.layer_combo.value and len(docks["map"]._xy) == 0  # nothing yet
    train_and_wait(widget, qtbot, 30)
    return viewer, widget, docks


def _drag(canvas, ax, start, end):
    """A left-button drag on a matplotlib canvas, in data coordinates."""
    from matplotlib.backend_bases import MouseEvent

    (x0, y0), (x1, y1) = ax.transData.transform([start, end])
    for name, x, y in (("button_press_event", x0, y0), ("motion_notify_event", (x0 + x1) / 2, (y0 + y1) / 2),
                       ("motion_notify_event", x1, y1), ("button_release_event", x1, y1)):
        canvas.callbacks.process(name, MouseEvent(name, canvas, x, y, button=1))


def test_data_map_shows_every_spot_after_training(trained):
    viewer, widget, docks = trained
    dm = docks["map"]
    adata = widget.layer_combo.value.metadata["adata"]
    np.testing.assert_array_equal(dm._xy[:, 0], adata.obs[keys.VARIABILITY].to_numpy())
    np.testing.assert_array_equal(dm._xy[:, 1], adata.obs[keys.CONFIDENCE].to_numpy())
    assert len(dm._base.get_offsets()) == adata.n_obs
    # the cut-offs of the rule used are drawn in this plane: the calibrated rule's variability
    # line when it has one (off by default), the paper's erroneous box only under rule='paper'
    th = adata.uns[keys.UNS]["thresholds"]
    assert th["rule"] == "calibrated" and th["ambiguous_variability"] == np.inf
    lines = [line for line in dm.ax.get_lines() if len(line.get_xdata())]  # not the (empty) selector's
    assert not lines
    adata.uns[keys.UNS]["thresholds"] = {**th, "ambiguous_variability": 0.2}
    dm.redraw()
    lines = [line for line in dm.ax.get_lines() if len(line.get_xdata())]
    assert any(np.allclose(line.get_xdata(), 0.2) for line in lines)
    assert not any(np.allclose(line.get_ydata(), th["confidence"]) for line in lines)
    adata.uns[keys.UNS]["thresholds"] = th


def test_box_in_the_map_selects_those_spots_on_the_tissue(trained, qtbot):
    viewer, widget, docks = trained
    dm, layer = docks["map"], widget.layer_combo.value
    obs = layer.metadata["adata"].obs
    dm.mode.value = "box"
    dm.canvas.draw()
    right = 0.95 * dm.ax.get_xlim()[1]  # inside the axes, whatever the variability range
    _drag(dm.canvas, dm.ax, (right, 0.5), (1e-4, -0.01))  # low confidence: the suspicious corner
    conf, var = obs[keys.CONFIDENCE].to_numpy(), obs[keys.VARIABILITY].to_numpy()
    expected = set(np.flatnonzero((var >= 1e-4) & (var <= right) & (conf <= 0.5) & (conf >= -0.01)).tolist())
    assert len(expected) > 20
    assert layer.selected_data == expected
    np.testing.assert_array_equal(dm.selected, sorted(expected))
    # the lasso does the same through its callback; Clear empties both sides
    dm.mode.value = "lasso"
    picked = dm.select_in_map([(0, 0.9), (1, 0.9), (1, 1.1), (0, 1.1)])
    assert layer.selected_data == set(picked.tolist()) == set(np.flatnonzero(conf > 0.9).tolist())
    dm.clear_selection()
    assert layer.selected_data == set() and dm.selected.size == 0


def test_selecting_on_the_tissue_highlights_in_the_map(trained):
    viewer, widget, docks = trained
    dm, layer = docks["map"], widget.layer_combo.value
    layer.selected_data = {3, 5, 8}  # a points selection (select mode, shift-click)
    np.testing.assert_array_equal(dm.selected, [3, 5, 8])
    np.testing.assert_array_equal(dm._overlay.get_offsets(), dm._xy[[3, 5, 8]])
    # the map fades; the selected spots are drawn over it in full colour
    assert dm._base.get_facecolors()[:, 3].max() < 0.5
    np.testing.assert_array_equal(dm._sel_points.get_offsets(), dm._xy[[3, 5, 8]])
    assert dm._sel_points.get_facecolors()[:, 3].min() == 1.0
    # a drawn region: an ellipse (centre, radii) in world coordinates
    xy = layer.data
    centre = xy.mean(axis=0)
    shapes = viewer.add_shapes(name="regions")
    shapes.add_ellipses(np.array([centre, [400, 300]]))
    inside = ((xy[:, 0] - centre[0]) / 400) ** 2 + ((xy[:, 1] - centre[1]) / 300) ** 2 <= 1
    assert 20 < inside.sum() < len(xy) / 2
    np.testing.assert_array_equal(dm.selected, np.flatnonzero(inside))
    # the region inspector read the same spots
    s = docks["region"].summary
    assert s is not None and s.n_cells == inside.sum()


def test_region_inspector_summarises_the_drawn_region(trained):
    viewer, widget, docks = trained
    region, layer = docks["region"], widget.layer_combo.value
    adata = layer.metadata["adata"]
    region.start_drawing()  # adds a 'regions' Shapes layer in polygon mode
    shapes = viewer.layers["regions"]
    assert shapes.mode == "add_polygon" and region.shapes_combo.value is shapes
    xy = layer.data
    lo = xy.min(axis=0)
    shapes.add_rectangles(np.array([lo, lo + 900]))
    inside = ((xy >= lo) & (xy <= lo + 900)).all(axis=1)
    s = region.summary
    obs = adata.obs[inside]
    assert s.n_cells == inside.sum() > 10
    assert s.categories == {c: int((obs[keys.CATEGORY] == c).sum()) for c in keys.CATEGORIES}
    assert s.labels == obs["label"].astype(str).value_counts().to_dict()
    assert s.mean_confidence == pytest.approx(obs[keys.CONFIDENCE].mean())
    assert len(s.top_genes) == 10
    text = region.text.text()
    assert f"<b>{inside.sum()}</b> of {adata.n_obs}" in text and s.top_genes["gene"][0] in text
    shapes.data = []  # removing every region empties the summary
    assert region.summary is None


def test_clicking_a_gene_colours_the_spots_by_its_expression(trained, qtbot):
    from qtpy.QtCore import Qt

    viewer, widget, docks = trained
    genes, layer = docks["genes"], widget.layer_combo.value
    adata = layer.metadata["adata"]
    assert genes.table.rowCount() == adata.n_vars
    low = adata.var[keys.GENE_LOW].sort_values(ascending=False)
    assert genes.genes[:5] == list(low.index[:5])  # ranked by the chosen score
    genes.ranking.value = "mid confidence (ambiguous)"
    assert genes.genes[0] == adata.var[keys.GENE_MID].idxmax()
    target = genes.genes[3]
    genes.filter.setText(target)
    mid = adata.var[keys.GENE_MID]
    matching = mid[mid.index.astype(str).str.lower().str.contains(target.lower(), regex=False)]
    # the filter keeps exactly the genes whose name contains the text, still ranked by the score
    assert target in genes.genes and set(genes.genes) == set(matching.index.astype(str))
    assert genes.table.rowCount() == len(genes.genes) == len(matching)
    assert (np.diff(mid[genes.genes].to_numpy()) <= 0).all()
    assert genes.table.item(0, 0).text() == genes.genes[0] and mid[genes.genes[0]] == matching.max()
    gene = genes.genes[0]
    rect = genes.table.visualItemRect(genes.table.item(0, 0))
    qtbot.mouseClick(genes.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    key = f"{gene} expression"
    expr = np.asarray(adata[:, gene].X).ravel()
    np.testing.assert_allclose(layer.features[key].to_numpy(), expr)
    assert layer.metadata["color_by"] == key and layer.face_colorbar.visible
    colors = np.asarray(layer.face_color)
    assert not np.allclose(colors[np.argmin(expr)], colors[np.argmax(expr)])
