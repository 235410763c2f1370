"""The viewer's cell model: layers of cells (spots and masks, whole tables or one section), in obs rows."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")

from cell_layers import PIXEL, add_cells_layer  # noqa: E402
from conftest import needs_display  # noqa: E402

from napari_annotatability.core import keys  # noqa: E402

pytestmark = needs_display


def _table(n: int = 60, seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    obs = pd.DataFrame({"label": pd.Categorical(rng.choice(["a", "b"], n)),
                        "section": pd.Categorical(np.where(np.arange(n) < n // 2, "s1", "s2"))},
                       index=[f"cell{i}" for i in range(n)])
    adata = ad.AnnData(X=rng.normal(size=(n, 5)).astype(np.float32), obs=obs)
    adata.obsm["spatial"] = rng.uniform(0, 100, size=(n, 2))
    return adata


def test_layers_of_cells_are_listed_and_followed(make_napari_viewer):
    from napari_annotatability._napari._model import cell_model

    viewer = make_napari_viewer()
    model = cell_model(viewer)
    assert cell_model(viewer) is model and model.cells() == []
    events = []
    model.layers_changed.connect(lambda: events.append("layers"))
    model.current_changed.connect(lambda cell: events.append(cell.name))
    viewer.add_image(np.zeros((10, 10)), name="image")  # not a layer of cells
    adata = _table()
    spots = viewer.add_points(adata.obsm["spatial"][:, ::-1], name="spots", metadata={"adata": adata})
    assert [c.layer for c in model.cells()] == [spots] and events == ["layers", "spots"]
    assert model.cells(kind="cells") == [] and model.cells(require="nothing") == []
    mask = add_cells_layer(viewer, n_spots=100)
    assert [c.kind for c in model.cells()] == ["spots", "cells"] and model.current.layer is mask
    viewer.layers.remove(spots)
    assert [c.layer for c in model.cells()] == [mask] and events.count("layers") == 3


def test_a_section_layer_speaks_obs_rows(make_napari_viewer):
    """Two Points layers of one table (one per section): selections and positions are obs rows."""
    from napari_annotatability._napari._model import cell_model

    viewer = make_napari_viewer()
    adata = _table()
    rows2 = np.flatnonzero(adata.obs["section"] == "s2")
    xy = adata.obsm["spatial"][rows2]
    # the section is scaled and shifted on the slide: positions go through its public transform
    layer = viewer.add_points(xy[:, ::-1], name="s2", size=4, scale=(2, 2), translate=(10, -5),
                              metadata={"adata": adata, "rows": rows2})
    model = cell_model(viewer)
    cell = model.get(layer)
    assert cell.n == len(rows2) and cell.rows.tolist() == rows2.tolist()
    world = cell.world_positions()
    np.testing.assert_allclose(world, xy[:, ::-1] * 2 + (10, -5))
    seen = []
    model.selection_changed.connect(lambda c, rows: seen.append(list(rows)))
    cell.select([rows2[3], rows2[5], 0])  # row 0 is in the other section: not shown here
    assert layer.selected_data == {3, 5} and seen == [[rows2[3], rows2[5]]]
    layer.selected_data = {7}  # a selection made on the layer itself
    assert seen[-1] == [rows2[7]]
    assert cell.row_at_world(world[9] + 1.0) == rows2[9]  # within the point's radius (2 x 2 world units)
    assert cell.row_at_world(world[9] + 50.0) is None
    assert set(cell.neighbours(rows2[9], 3)) <= set(rows2.tolist())
    # a drawn shape selects the cells of the section whose centre is inside
    shapes = viewer.add_shapes(np.array([[world[9] - 0.5, world[9] + 0.5]]), shape_type="rectangle")
    assert model.get(layer).selection().tolist() == [rows2[9]]
    np.testing.assert_array_equal(cell.rows_in_shapes(shapes), [rows2[9]])
    # features hold the section's rows
    cell.sync()
    assert layer.features["label"].tolist() == adata.obs["label"].iloc[rows2].tolist()


def test_a_rotated_mask_maps_world_positions_to_its_cells(make_napari_viewer):
    from napari_annotatability._napari._model import cell_model

    viewer = make_napari_viewer()
    layer = add_cells_layer(viewer, n_spots=100)
    cell = cell_model(viewer).get(layer)
    row = 42
    centre_data = np.asarray(layer.world_to_data(cell.world_position(row)))
    layer.rotate = 30  # the mask turns on the slide: world positions go through the rotation
    world = np.asarray(layer.data_to_world(centre_data))
    assert np.linalg.norm(world - cell.world_position(row)) > PIXEL  # it moved (rotation about the origin)
    assert cell.row_at_world(world) == row
    # two pixels off the centre along the mask's rows is still the cell; four is the background
    for pixels, expected in ((2, row), (4, None)):
        off = np.asarray(layer.data_to_world(centre_data + (pixels, 0)))
        assert np.isclose(np.linalg.norm(off - world), pixels * PIXEL)
        assert cell.row_at_world(off) == expected


def test_training_one_section_shows_the_results_on_every_section(make_napari_viewer, qtbot):
    """Sections of one table are trained jointly: both layers recolour, each with its own rows."""
    viewer = make_napari_viewer(show=True)
    adata = _table(80)
    layers = []
    for name in ("s1", "s2"):
        rows = np.flatnonzero(adata.obs["section"] == name)
        layers.append(viewer.add_points(adata.obsm["spatial"][rows, ::-1], name=name, size=3,
                                        metadata={"adata": adata, "rows": rows},
                                        features=adata.obs.iloc[rows].reset_index(drop=True)))
    _, widget = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability")
    widget.layer_combo.value = layers[0]
    widget.label_combo.value = "label"
    widget.adaptive.value = False
    widget.epochs.value = 3
    widget.calibrate.value = False
    worker = widget.train(start=False)
    assert all(lyr.metadata["training"] for lyr in layers)  # neither section exports a half result
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        worker.start()
    for lyr in layers:
        rows = lyr.metadata["rows"]
        assert not lyr.metadata["training"] and lyr.metadata["color_by"] == keys.CONFIDENCE
        np.testing.assert_array_equal(lyr.features[keys.CONFIDENCE], adata.obs[keys.CONFIDENCE].iloc[rows])
