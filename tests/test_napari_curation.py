"""The curation dock on the synthetic sample: review queue, relabel, undo, retrain and compare."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")

from conftest import needs_display, train_and_wait  # noqa: E402

from napari_annotatability.core import keys  # noqa: E402
from napari_annotatability._napari._cells import view_camera  # noqa: E402
from napari_annotatability.core.curation import Curation  # noqa: E402

pytestmark = needs_display

EPOCHS = 10  # enough on the sample: the planted mislabels come out erroneous with good suggestions


@pytest.fixture
def curating(make_napari_viewer, qtbot, monkeypatch):
    """The demo sample trained through the widget, the curation dock open; errors collected."""
    from napari_annotatability._napari._demo import open_demo

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1400, 900)
    viewer, widget = open_demo(viewer)
    train_and_wait(widget, qtbot, EPOCHS)
    dock = widget.open_dock("Annotatability curation")
    messages: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_error", messages.append)
    return viewer, widget, dock, messages


def _wrong(adata, key) -> int:
    return int((adata.obs[key].astype(str).to_numpy() != adata.obs["region"].astype(str).to_numpy()).sum())


def test_review_every_erroneous_cell_then_retrain(curating, qtbot, tmp_path):
    """Must reach: accept the suggestion of every erroneous cell through the queue, retrain."""
    import anndata as ad
    from qtpy.QtCore import Qt

    viewer, widget, dock, messages = curating
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    original = adata.obs["label"].copy()
    wrong_before = _wrong(adata, "label")
    assert dock.layer_combo.value is layer and dock.key_combo.value == "label"

    queue = dock.start_review("erroneous")
    erroneous = np.flatnonzero((adata.obs[keys.CATEGORY] == "erroneous").to_numpy())
    assert sorted(queue.cells.tolist()) == erroneous.tolist() and len(queue) > 50
    quality = adata.obs[keys.LABEL_QUALITY].to_numpy()[queue.cells]
    assert (np.diff(quality) >= 0).all()  # most suspicious first
    assert dock.progress.text().startswith(f"0 of {len(queue)} reviewed")
    # the first few through the keyboard (the dock has focus), the others with the button
    dock.window().activateWindow()
    dock.buttons["accept"].setFocus()
    qtbot.waitUntil(lambda: dock.buttons["accept"].hasFocus(), timeout=5000)
    for _ in range(3):
        qtbot.keyClick(dock.buttons["accept"], Qt.Key.Key_A)
    assert queue.n_reviewed == 3, "the A shortcut did not accept"
    while not queue.done:
        dock.buttons["accept"].click()
    assert dock.progress.text().startswith(f"{len(queue)} of {len(queue)} reviewed")

    cur = dock.curation
    suggested = adata.obs[keys.SUGGESTED_LABEL].astype(str).to_numpy()
    changed = erroneous[suggested[erroneous] != original.astype(str).to_numpy()[erroneous]]
    log = cur.log
    # the log lists every edit: one per erroneous cell whose suggestion differed from its label
    assert sorted(log["cell"]) == sorted(adata.obs_names[changed])
    assert (log["source"] == "suggestion").all()
    assert log.set_index("cell").loc[adata.obs_names[changed], "to"].tolist() == suggested[changed].tolist()
    assert (log.set_index("cell").loc[adata.obs_names[changed], "from"].tolist()
            == original.astype(str).to_numpy()[changed].tolist())
    np.testing.assert_array_equal(layer.features["label_curated"].astype(str), adata.obs["label_curated"].astype(str))

    categories_before = adata.obs[keys.CATEGORY].value_counts()
    worker = dock.retrain(start=False)
    assert worker is not None and dock.is_retraining
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        worker.start()
    assert not dock.is_retraining and not messages
    wrong_after = _wrong(adata, "label_curated")
    print(f"labels differing from the planted truth: {wrong_before} before, {wrong_after} after curation "
          f"({1 - wrong_after / wrong_before:.0%} fewer); {len(log)} edits")
    assert wrong_after <= 0.2 * wrong_before
    pd.testing.assert_series_equal(adata.obs["label"], original)  # the original column is unchanged
    assert adata.uns[keys.UNS]["label_key"] == "label_curated"
    # the before/after table and the change colouring
    cmp = dock.comparison
    assert cmp is not None and cmp.table.loc["erroneous", "before"] == categories_before["erroneous"]
    assert cmp.table.loc["erroneous", "after"] < 0.2 * categories_before["erroneous"]
    assert dock.compare.cell("erroneous", "before") == str(categories_before["erroneous"])
    assert cmp.prefer_curated is not None and cmp.prefer_curated > 0.9 * cmp.n_edited
    assert f"{cmp.moved} of {adata.n_obs} cells changed category" in dock.status.text()
    dock.buttons["color_change"].click()
    assert layer.metadata["color_by"] == keys.CATEGORY_CHANGE
    assert (layer.features[keys.CATEGORY_CHANGE] == "erroneous → correct").sum() > 0.8 * len(changed)
    # the curated column and the log export with the layer and come back on re-opening
    out = widget.export(tmp_path / "curated.h5ad")
    back = ad.read_h5ad(out)
    pd.testing.assert_frame_equal(Curation(back, "label").edits_table(), cur.edits_table())
    assert back.obs["label_curated"].astype(str).tolist() == adata.obs["label_curated"].astype(str).tolist()
    csv = pd.read_csv(dock.export_csv(tmp_path / "edits.csv"))
    assert list(csv.columns[:5]) == ["cell", "original", "previous", "curated", "source"] and len(csv) == len(log)


def test_navigation_centres_the_view_and_updates_the_inspector(curating):
    viewer, widget, dock, messages = curating
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    queue = dock.start_review()  # suspicious: erroneous, then ambiguous
    insp = widget.open_dock("Annotatability spot inspector")
    times = []
    for step in range(4):
        start = time.perf_counter()
        cell = dock.next_cell()
        times.append(time.perf_counter() - start)
        assert cell == queue.cells[step + 1]
        centre = np.asarray(view_camera(viewer).center)[-2:]
        np.testing.assert_allclose(centre, layer.data_to_world(layer.data[cell])[-2:])
        assert layer.selected_data == {cell}
        assert adata.obs_names[cell] in insp.title.text()
        (line,) = insp.ax.get_lines()
        np.testing.assert_allclose(line.get_ydata(), adata.obsm[keys.TRAJECTORY][cell])
        assert adata.obs_names[cell] in dock.info.text() and "neighbours:" in dock.info.text()
        assert f"rank {int((adata.obs[keys.LABEL_QUALITY] < adata.obs[keys.LABEL_QUALITY].iloc[cell]).sum()) + 1:,}".replace(
            ",", " ") in dock.info.text()
    assert max(times) < 1.0  # the benchmark measures it at 10^5 spots
    zoom = view_camera(viewer).zoom
    assert dock.previous_cell() == queue.cells[3] and view_camera(viewer).zoom == pytest.approx(zoom)
    view_camera(viewer).zoom = zoom / 3  # the user zooms out: kept from then on
    dock.next_cell()
    assert view_camera(viewer).zoom == pytest.approx(zoom / 3)
    # skip counts as reviewed and moves on; the n-th label key relabels by hand
    dock.skip()
    assert queue.n_reviewed == 1 and queue.position == 5
    cell = queue.current
    assert dock.relabel_current(index=3) == (adata.obs["label"].iloc[cell] != "stroma")
    assert dock.curation.labels.iloc[cell] == "stroma" and queue.n_reviewed == 2
    assert dock.curation.log["source"].tolist()[-1:] in ([], ["manual"])
    assert not messages


def test_relabel_a_selection_or_a_drawn_region_at_once_and_undo(curating):
    viewer, widget, dock, messages = curating
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    layer.selected_data = {1, 2, 3, 40}  # clicks in select mode, or the data map's lasso
    dock.label_box.setCurrentText("follicle")
    n = dock.relabel_group("selected cells")
    expected = int((adata.obs["label"].iloc[[1, 2, 3, 40]] != "follicle").sum())
    assert n == expected and dock.curation.n_actions == 1
    assert set(dock.curation.log["source"]) == {"bulk"}
    # a drawn rectangle
    xy = layer.data
    lo = xy.min(axis=0)
    shapes = viewer.add_shapes(name="regions")
    shapes.add_rectangles(np.array([lo, lo + 600]))
    inside = np.flatnonzero(((xy >= lo) & (xy <= lo + 600)).all(axis=1))
    assert 5 < inside.size < 200
    dock.label_box.setCurrentText("stroma")
    dock.relabel_group("inside drawn shapes")
    assert (dock.curation.labels.iloc[inside] == "stroma").all()
    # one undo takes the whole region back, redo puts it again
    back = dock.undo()
    np.testing.assert_array_equal(back, [i for i in inside if adata.obs["label"].iloc[i] != "stroma"])
    assert dock.curation.n_actions == 1
    dock.redo()
    assert (dock.curation.labels.iloc[inside] == "stroma").all()
    assert (layer.features["label_curated"].iloc[inside] == "stroma").all()
    # a whole category, each to its suggestion
    dock.relabel_group("erroneous", suggested=True)
    err = (adata.obs[keys.CATEGORY] == "erroneous").to_numpy()
    assert (dock.curation.labels[err].astype(str) == adata.obs[keys.SUGGESTED_LABEL][err].astype(str)).all()
    assert not messages
    # colour by the curated labels, with the legend
    dock.buttons["color_curated"].click()
    assert layer.metadata["color_by"] == "label_curated"


def test_bad_input_is_a_clear_message_and_loses_nothing(curating, qtbot):
    viewer, widget, dock, messages = curating
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    # undo with nothing to undo
    assert dock.undo() is None and "Nothing to undo" in messages[-1]
    assert dock.redo() is None and "Nothing to redo" in messages[-1]
    # navigation before a review
    assert dock.next_cell() is None and "Start a review first" in messages[-1]
    # a label that is not a category
    dock.start_review("erroneous")
    cell = dock.queue.current
    dock.label_box.setCurrentText("tumour")
    assert dock.relabel_current() == 0
    assert "'tumour' is not a label of 'label'" in messages[-1] and "allow" in messages[-1]
    assert dock.curation.n_edits == 0 and dock.queue.current == cell
    dock.allow_new.setChecked(True)  # explicitly allowed: a new category of the curated column only
    assert dock.relabel_current() == 1
    assert "tumour" in dock.curation.categories and "tumour" not in adata.obs["label"].cat.categories
    assert dock.label_box.findText("tumour") >= 0
    # retrain while a training runs: refused, nothing started
    widget.calibrate.value = False
    worker = widget.train(start=False)
    assert dock.retrain() is None and "A training is running" in messages[-1]
    assert dock.relabel_group("erroneous", suggested=True) == 0 and "training is running" in messages[-1]
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        worker.start()
    assert dock.curation.n_edits == 1
    # a closed layer
    viewer.layers.remove(layer)
    assert "was closed" in dock.status.text()
    assert dock.accept() == 0 and "closed or none is picked" in messages[-1]
    assert dock.next_cell() is None and dock.retrain() is None
    assert dock.undo() is None and "closed" in messages[-1]
    # nothing lost: the AnnData keeps the curated column and the log
    assert adata.obs["label_curated"].iloc[cell] == "tumour" and Curation(adata, "label").n_edits == 1


def test_keys_on_the_viewer_do_not_clash_with_napari(curating):
    from types import SimpleNamespace

    from napari_annotatability._napari._curation_keys import DOCK_KEYS, taken_keys

    viewer, widget, dock, messages = curating
    taken = taken_keys(SimpleNamespace(keymap={}))  # napari's own bindings, without this viewer's
    assert {"A", "S", "P", "Ctrl+Z"} <= taken  # napari's select-all, select mode, add mode, labels undo
    assert set(dock.viewer_keys) == {k for k in DOCK_KEYS if k not in taken} == {"N"}
    dock.start_review("erroneous")
    first = dock.queue.current
    # the viewer-level N steps the queue (as the dock's N does)
    handler = next(v for k, v in viewer.keymap.items() if str(k) == "N")
    handler(viewer)
    assert dock.queue.position == 1 and dock.queue.current != first
