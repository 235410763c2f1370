"""Every button of every dock, clicked as a person clicks it (``qtbot.mouseClick``), and the README's job.

The slots are never called here: a click goes through Qt's ``clicked(checked)`` signal, which is
how a Train button that built a worker and never started it went unnoticed while the tests that
called ``train()`` passed.  Each test waits on what the user sees (categories written, a legend,
a dock shown, the review moved on) under Qt's event loop.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")

from conftest import click, needs_display, train_and_wait  # noqa: E402

from napari_annotatability.core import keys  # noqa: E402

pytestmark = needs_display


@pytest.fixture
def demo(make_napari_viewer):
    from napari_annotatability._napari._demo import open_demo

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1280, 800)
    return open_demo(viewer)


@pytest.fixture
def trained(demo, qtbot):
    """The demo after a short training started by a click (10 epochs, calibrated)."""
    viewer, widget = demo
    train_and_wait(widget, qtbot, 10)
    return viewer, widget


def test_a_click_on_train_trains_and_colours_the_spots_by_category(demo, qtbot):
    viewer, widget = demo
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    epochs_seen = []
    widget.adaptive.value = False
    widget.epochs.value = 15
    with qtbot.waitSignal(widget.training_finished, timeout=180_000):
        click(qtbot, widget.train_button)
        assert widget.is_training and not widget.train_button.isEnabled() and widget.cancel_button.isEnabled()
        widget.worker.yielded.connect(lambda p: epochs_seen.append(p.epoch))
    assert epochs_seen and keys.CATEGORY in adata.obs
    assert layer.metadata["color_by"] == keys.CATEGORY
    assert [e[0] for e in widget.legend.entries] == list(keys.CATEGORIES)
    assert widget.status.text().startswith("Done in") and widget.train_button.isEnabled()
    assert not widget.cancel_button.isEnabled()
    # the status gives the whole analysis's time, not the first training's
    seconds = float(widget.status.text().split("Done in ")[1].split(" s")[0])
    assert seconds >= adata.uns[keys.UNS]["seconds"]


def test_a_click_on_cancel_stops_the_training_and_train_works_again(demo, qtbot):
    viewer, widget = demo
    adata = widget.layer_combo.value.metadata["adata"]
    widget.adaptive.value = False
    widget.epochs.value = 2000
    with qtbot.waitSignal(widget.training_finished, timeout=120_000):
        click(qtbot, widget.train_button)
        qtbot.waitUntil(lambda: "epoch" in widget.status.text(), timeout=60_000)
        click(qtbot, widget.cancel_button)
        assert widget.status.text() == "Cancelling ..."
    assert widget.status.text() == "Cancelled: nothing was written."
    assert widget.train_button.isEnabled() and not widget.cancel_button.isEnabled()
    assert keys.CONFIDENCE not in adata.obs
    train_and_wait(widget, qtbot, 3, calibrate=False)  # and a second click trains
    assert keys.CONFIDENCE in adata.obs


def test_colour_buttons_recolour_and_inspect_buttons_open_their_docks(trained, qtbot):
    viewer, widget = trained
    layer = widget.layer_combo.value
    expected = {"Label": "label", "Confidence": keys.CONFIDENCE, "Variability": keys.VARIABILITY,
                "Category": keys.CATEGORY, "Suggested": keys.SUGGESTED_LABEL}
    for text, key in expected.items():
        click(qtbot, widget.color_buttons[text])
        assert layer.metadata["color_by"] == key, text
    # a colormap names itself in the legend (napari's colorbar has no title)
    click(qtbot, widget.color_buttons["Confidence"])
    assert widget.legend.colorbar is not None and widget.legend._title.text() == keys.CONFIDENCE
    main = widget.window()
    screen = main.screen().availableGeometry()
    from napari_annotatability._napari._layout import short_title
    from napari_annotatability._napari._widget import DOCKS

    for text, name in DOCKS:
        click(qtbot, widget.dock_buttons[text])
        qtbot.waitUntil(lambda n=name: any(d.windowTitle() == short_title(n) and d.isVisible() for d in _docks(main)),
                        timeout=10_000)
        assert main.height() <= screen.height() and main.width() <= screen.width(), text
    # the docks share one tab group: each opened one is on top, the others are tabs behind it
    titles = {d.windowTitle() for d in _docks(main)}
    assert {"Data map", "Genes", "Communities", "Spot", "Region", "Curation"} <= titles


def _docks(main):
    from qtpy.QtWidgets import QDockWidget

    return main.findChildren(QDockWidget)


def test_build_graph_click_builds_the_communities_in_natural_order(trained, qtbot):
    viewer, widget = trained
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    click(qtbot, widget.dock_buttons["Communities"])
    comm = _open(viewer, "Annotatability communities")
    assert comm.status.text().startswith("Scored")  # not "Train first" after a training
    comm.resolution.value = 2.0  # enough communities to pass 10
    with qtbot.waitSignal(comm.run_button.clicked):
        click(qtbot, comm.run_button)
    assert comm.worker is not None
    qtbot.waitUntil(lambda: comm.worker is None, timeout=180_000)
    assert keys.COMMUNITY in adata.obs and layer.metadata["color_by"] == keys.COMMUNITY
    names = [e[0] for e in comm.legend.entries]
    assert len(names) == adata.obs[keys.COMMUNITY].nunique() > 1
    assert names == sorted(names, key=int)  # 0, 1, 2, ..., 10, not 0, 1, 10, 2
    assert comm.status.text().endswith("s.")


def _open(viewer, name):
    _, w = viewer.window.add_plugin_dock_widget("napari-annotatability", name)  # the one already open
    return w


def test_data_map_region_and_genes_docks_respond_to_clicks(trained, qtbot):
    from qtpy.QtCore import Qt

    viewer, widget = trained
    layer = widget.layer_combo.value
    click(qtbot, widget.dock_buttons["Data map"])
    dmap = _open(viewer, "Annotatability data map")
    from napari_annotatability._napari._model import cell_model

    cell_model(viewer).get(layer).select([0, 1, 2])
    qtbot.waitUntil(lambda: len(dmap.selected) == 3, timeout=5_000)
    click(qtbot, dmap.clear_button)
    assert len(dmap.selected) == 0 and len(layer.selected_data) == 0

    click(qtbot, widget.dock_buttons["Region"])
    region = _open(viewer, "Annotatability region inspector")
    click(qtbot, region.draw_button)
    shapes = viewer.layers.selection.active
    assert type(shapes).__name__ == "Shapes" and shapes.mode == "add_polygon"

    click(qtbot, widget.dock_buttons["Genes"])
    genes = _open(viewer, "Annotatability genes")
    qtbot.waitUntil(lambda: genes.table.rowCount() > 0, timeout=5_000)
    gene = genes.table.item(1, 0).text()
    rect = genes.table.visualItemRect(genes.table.item(1, 0))
    qtbot.mouseClick(genes.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert layer.metadata["color_by"] == f"{gene} expression"
    assert widget.legend._title.text() == f"{gene} expression"  # the colorbar is titled


def test_inspecting_a_spot_rings_it_on_the_canvas(trained, qtbot):
    viewer, widget = trained
    layer = widget.layer_combo.value
    click(qtbot, widget.dock_buttons["Spot"])
    insp = _open(viewer, "Annotatability spot inspector")
    from napari_annotatability._napari._inspector import MARKER_NAME
    from napari_annotatability._napari._model import cell_model

    cell = cell_model(viewer).get(layer)
    cell.select([7])
    qtbot.waitUntil(lambda: MARKER_NAME in viewer.layers, timeout=5_000)
    marker = viewer.layers[MARKER_NAME]
    np.testing.assert_allclose(marker.data[0], cell.world_position(7))
    assert viewer.layers.selection.active is layer  # the ring did not take the user's layer
    assert insp.values["category"].text() == str(layer.metadata["adata"].obs[keys.CATEGORY].iloc[7])


def test_curation_buttons_and_keys_review_relabel_undo_export_and_retrain(trained, qtbot, tmp_path, monkeypatch):
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QFileDialog

    viewer, widget = trained
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    click(qtbot, widget.dock_buttons["Curate"])
    cur = _open(viewer, "Annotatability curation")
    assert "Start review" in cur.progress.text()  # it follows the results: no "Train first"
    click(qtbot, cur.start_button)
    q = cur.queue
    assert q is not None and len(q) > 3 and cur.progress.text().startswith("0 of")
    first = q.current
    # A, with the focus in the dock (on the button just clicked), accepts the suggestion and moves on
    from qtpy.QtWidgets import QApplication

    cur.window().activateWindow()
    cur.start_button.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is cur.start_button, timeout=5_000)
    qtbot.keyClick(cur.start_button, Qt.Key.Key_A)
    assert cur.curation.n_edits == 1 and q.current != first
    assert adata.obs[keys.curated_key("label")].iloc[first] == adata.obs[keys.SUGGESTED_LABEL].iloc[first]
    second = q.current
    click(qtbot, cur.buttons["skip"])
    assert q.current != second and cur.curation.n_edits == 1
    click(qtbot, cur.buttons["previous"])
    assert q.current == second
    click(qtbot, cur.buttons["next"])
    click(qtbot, cur.buttons["accept"])
    assert cur.curation.n_edits == 2
    click(qtbot, cur.buttons["undo"])
    assert cur.curation.n_edits == 1
    click(qtbot, cur.buttons["redo"])
    assert cur.curation.n_edits == 2
    cur.label_box.setCurrentText("cortex")
    click(qtbot, cur.buttons["relabel"])
    assert cur.curation.n_edits == 3
    # the other keys, with the focus in the dock: N / P move, S keeps, 1 gives the first label,
    # Ctrl+Z / Ctrl+Shift+Z undo and redo
    cur.buttons["relabel"].setFocus()
    focus = cur.buttons["relabel"]
    at = q.position
    qtbot.keyClick(focus, Qt.Key.Key_N)
    assert q.position == at + 1
    qtbot.keyClick(focus, Qt.Key.Key_P)
    assert q.position == at
    reviewed = q.n_reviewed
    qtbot.keyClick(focus, Qt.Key.Key_S)
    assert cur.curation.n_edits == 3 and q.position != at and q.n_reviewed == reviewed + 1
    target = q.current
    qtbot.keyClick(focus, Qt.Key.Key_1)
    first_label = cur.curation.categories[0]
    assert cur.curation.n_edits == 4 and adata.obs[keys.curated_key("label")].iloc[target] == first_label
    qtbot.keyClick(focus, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert cur.curation.n_edits == 3
    qtbot.keyClick(focus, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert cur.curation.n_edits == 4
    click(qtbot, cur.buttons["undo"])
    assert cur.curation.n_edits == 3
    # many at once: the selected cells get the label in the box
    from napari_annotatability._napari._model import cell_model

    cell_model(viewer).get(layer).select([0, 1, 2, 3])
    cur.group_combo.setCurrentText("selected cells")
    cur.label_box.setCurrentText("medulla")
    click(qtbot, cur.buttons["bulk"])
    assert (adata.obs[keys.curated_key("label")].iloc[:4] == "medulla").all()
    click(qtbot, cur.buttons["undo"])
    assert cur.curation.n_edits == 3
    # many at once: the erroneous cells get their suggestions (one undo takes them back)
    cur.group_combo.setCurrentText("erroneous")
    click(qtbot, cur.buttons["bulk_accept"])
    erroneous = int((layer.metadata["adata"].obs[keys.CATEGORY] == "erroneous").sum())
    assert 3 < cur.curation.n_edits <= 3 + erroneous
    click(qtbot, cur.buttons["undo"])
    assert cur.curation.n_edits == 3
    # export the log (the dialog answered)
    out = tmp_path / "edits.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    click(qtbot, cur.buttons["export"])
    assert out.exists() and "curated" in out.read_text().splitlines()[0]
    # retrain on the curated labels through the training widget, then colour by the change
    with qtbot.waitSignal(widget.training_finished, timeout=180_000):
        click(qtbot, cur.buttons["retrain"])
        assert widget.is_training
    qtbot.waitUntil(lambda: cur.comparison is not None, timeout=10_000)
    assert cur.compare.cell("erroneous", "before") != ""
    click(qtbot, cur.buttons["color_change"])
    assert widget.legend._title.text() == keys.CATEGORY_CHANGE
    click(qtbot, cur.buttons["color_curated"])
    assert layer.metadata["color_by"] == keys.curated_key("label")


def test_export_and_figure_buttons_write_the_files_the_dialog_names(trained, qtbot, tmp_path, monkeypatch):
    import anndata as ad
    from qtpy.QtWidgets import QFileDialog

    viewer, widget = trained
    answers = iter([str(tmp_path / "cells.h5ad"), str(tmp_path / "cells.csv"), str(tmp_path / "figure.png")])
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (next(answers), "")))
    click(qtbot, widget.export_button)
    back = ad.read_h5ad(tmp_path / "cells.h5ad")
    assert keys.CATEGORY in back.obs and back.n_obs == widget.layer_combo.value.metadata["adata"].n_obs
    click(qtbot, widget.export_button)
    assert keys.CATEGORY in (tmp_path / "cells.csv").read_text().splitlines()[0]
    click(qtbot, widget.figure_button)
    from PIL import Image

    assert Image.open(tmp_path / "figure.png").size[0] > 100


def test_mask_points_button_switches_a_mask_to_centroid_points_and_back(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-annotatability", "synthetic_cells")
    _, widget = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability")
    mask = widget.layer_combo.value
    assert type(mask).__name__ == "Labels" and widget.switch_button.isEnabled()
    click(qtbot, widget.switch_button)
    points = widget.layer_combo.value
    assert type(points).__name__ == "Points" and points.metadata["adata"] is mask.metadata["adata"]
    click(qtbot, widget.switch_button)
    assert widget.layer_combo.value is mask


def test_annotation_list_follows_columns_added_to_the_table(demo, qtbot):
    from qtpy.QtCore import Qt

    viewer, widget = demo
    adata = widget.layer_combo.value.metadata["adata"]
    adata.obs["z_level"] = np.repeat([0.0, 1.5, 3.0, 4.5, 6.0], -(-adata.n_obs // 5))[: adata.n_obs]
    assert "z_level" not in widget.label_combo.choices  # nothing told the widget yet
    qtbot.mouseClick(widget.label_combo.native, Qt.MouseButton.LeftButton)  # opening the list refreshes it
    assert "z_level" in widget.label_combo.choices
    widget.label_combo.native.hidePopup()
    from napari_annotatability.core import annotation_columns

    assert [c for c in widget.label_combo.choices if c is not None] == annotation_columns(adata.obs)  # the CLI rule


def test_readme_job_by_clicks_demo_train_inspect_curate_retrain_export(demo, qtbot, tmp_path, monkeypatch):
    """The README's main job, the way a person does it, on napari's event loop: no method is called."""
    import anndata as ad
    from qtpy.QtWidgets import QFileDialog

    viewer, widget = demo
    layer = widget.layer_combo.value
    with qtbot.waitSignal(widget.training_finished, timeout=300_000):  # the adaptive recipe, as shipped
        click(qtbot, widget.train_button)
    adata = layer.metadata["adata"]
    assert layer.metadata["color_by"] == keys.CATEGORY and (adata.obs[keys.CATEGORY] == "erroneous").any()
    click(qtbot, widget.color_buttons["Category"])
    click(qtbot, widget.dock_buttons["Data map"])
    dmap = _open(viewer, "Annotatability data map")
    assert len(dmap._rows) == adata.n_obs
    click(qtbot, widget.dock_buttons["Curate"])
    cur = _open(viewer, "Annotatability curation")
    click(qtbot, cur.start_button)
    first = cur.queue.current
    click(qtbot, cur.buttons["accept"])
    assert adata.obs[keys.curated_key("label")].iloc[first] == adata.obs[keys.SUGGESTED_LABEL].iloc[first]
    with qtbot.waitSignal(widget.training_finished, timeout=300_000):
        click(qtbot, cur.buttons["retrain"])
    qtbot.waitUntil(lambda: cur.comparison is not None, timeout=10_000)
    out = tmp_path / "curated.h5ad"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    click(qtbot, widget.export_button)
    back = ad.read_h5ad(out)
    assert back.uns["annotatability"]["label_key"] == keys.curated_key("label")
    assert keys.CATEGORY_CHANGE in back.obs and keys.curated_key("label") in back.obs


def test_every_button_of_every_dock_clicked_raises_nothing(trained, qtbot, tmp_path, monkeypatch):
    """A backstop: each enabled button of every dock, clicked once (dialogs answered); an exception in
    any slot fails the test (pytest-qt), and each click leaves the viewer usable."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QAbstractButton, QDockWidget, QFileDialog

    viewer, widget = trained
    names = iter(str(tmp_path / f"out{i}{ext}") for i in range(100) for ext in (".h5ad",))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (next(names), "")))
    for button in widget.dock_buttons.values():
        click(qtbot, button)
    main = widget.window()
    clicked = []
    for dock in main.findChildren(QDockWidget):
        body = dock.widget()
        if body is None or not dock.windowTitle() or dock.windowTitle() in ("layer controls", "layer list",
                                                                             "console"):
            continue
        dock.raise_()
        for button in body.findChildren(QAbstractButton):
            if not button.isEnabled() or not button.isVisible() or not button.text():
                continue
            if button.text() in ("Train", "Retrain on curated labels", "Build graph and communities"):
                continue  # trainings: clicked and waited on in the tests above
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
            clicked.append(f"{dock.windowTitle()}: {button.text()}")
            qtbot.wait(20)
    assert len(clicked) > 25, clicked
    assert not widget.is_training and widget.train_button.isEnabled()


def _menu_action(main, path: str):
    """The QAction at ``path`` ("File/Open Sample/Annotatability/...") of the window's menu bar."""
    menus = [a for a in main.menuBar().actions()]
    *heads, leaf = path.split("/")
    for head in heads:
        action = next(a for a in menus if a.text().replace("&", "") == head)
        action.menu().aboutToShow.emit()  # napari fills some menus as they open
        menus = action.menu().actions()
    return next(a for a in menus if a.text().replace("&", "").startswith(leaf))


def test_menu_actions_open_the_sample_and_every_dock_as_tabs(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QApplication, QDockWidget, QMainWindow

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1280, 800)
    main = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMainWindow) and w.isVisible())
    _menu_action(main, "File/Open Sample/Annotatability/Synthetic tissue").trigger()
    qtbot.waitUntil(lambda: "synthetic spots" in viewer.layers, timeout=30_000)
    _menu_action(main, "Plugins/Annotatability/Annotatability").trigger()
    from napari_annotatability._napari._layout import SHORT_TITLES

    for name, short in SHORT_TITLES.items():
        _menu_action(main, f"Plugins/Annotatability/{name}").trigger()
        qtbot.waitUntil(lambda s=short: any(d.windowTitle() == s and d.isVisible()
                                            for d in main.findChildren(QDockWidget)), timeout=10_000)
    screen = main.screen().availableGeometry()
    assert main.height() <= screen.height() and main.width() <= screen.width()
    # all six in one tab group (napari alone would stack them under each other)
    docks = {d.windowTitle(): d for d in main.findChildren(QDockWidget)}
    group = set(main.tabifiedDockWidgets(docks["Data map"])) | {docks["Data map"]}
    assert {docks[s] for s in SHORT_TITLES.values()} <= group
