"""The dock widget: live training on the synthetic sample, cancel/restart, a real screenshot."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("napari")

from conftest import needs_display, train_and_wait  # noqa: E402

from napari_annotatability.core import keys  # noqa: E402

pytestmark = needs_display


@pytest.fixture
def demo(make_napari_viewer):
    """The demo: synthetic sample opened through the plugin, the widget docked through napari."""
    from napari_annotatability._napari._demo import open_demo

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1400, 900)
    viewer, widget = open_demo(viewer)
    return viewer, widget


def test_widget_finds_the_sample_and_its_annotation(demo):
    viewer, widget = demo
    layer = widget.layer_combo.value
    assert layer is not None and layer.name == "synthetic spots"
    assert widget.label_combo.value == "label"
    assert "region" in widget.label_combo.choices and "mislabelled" not in widget.label_combo.choices


@pytest.mark.slow
def test_train_recolours_live_and_writes_the_contract(demo, qtbot):
    viewer, widget = demo
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    widget.adaptive.value = False
    widget.epochs.value = 30
    colors_seen = []

    def record(p):
        if p.stage == "training":
            colors_seen.append(layer.face_color.copy())

    worker = widget.train(start=False)
    worker.yielded.connect(record)
    assert widget.is_training and not widget.train_button.isEnabled()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        worker.start()
    # recoloured every training epoch, and the colours changed as the network learnt
    assert len(colors_seen) == 30
    assert not np.allclose(colors_seen[0], colors_seen[-1])
    feats = layer.features
    for k in (*keys.SCORE_COLUMNS, keys.CATEGORY, keys.SUGGESTED_LABEL, keys.SUGGESTED_PROB):
        assert k in feats and k in adata.obs
    np.testing.assert_array_equal(feats[keys.CONFIDENCE].to_numpy(), adata.obs[keys.CONFIDENCE].to_numpy())
    # the planted mislabels of the sample come out erroneous; clean spots do not
    mis = adata.obs["mislabelled"].to_numpy()
    erroneous = (adata.obs[keys.CATEGORY] == "erroneous").to_numpy()
    print(f"planted mislabels called erroneous: {erroneous[mis].mean():.0%} of {mis.sum()}; "
          f"other spots called erroneous: {erroneous[~mis].mean():.1%}")
    assert erroneous[mis].mean() > 0.6 and erroneous[~mis].mean() < 0.05
    # the status line names the rule and the counts; hovering says what each category means
    assert adata.uns[keys.UNS]["thresholds"]["rule"] == "calibrated" == widget.rule.value
    assert "calibrated rule" in widget.status.text() and f"{int(erroneous.sum())} erroneous" in widget.status.text()
    assert "probably mislabelled" in widget.status.toolTip()
    # coloured by category with a legend, and every colour button works
    assert layer.metadata["color_by"] == keys.CATEGORY
    assert [e[0] for e in widget.legend.entries] == list(keys.CATEGORIES)
    for text, btn in widget.color_buttons.items():
        assert btn.isEnabled(), text
        btn.click()
    widget.color_buttons["Variability"].click()
    assert layer.face_colorbar.visible and layer.metadata["color_by"] == keys.VARIABILITY
    widget.color_buttons["Suggested"].click()
    assert not layer.face_colorbar.visible and widget.legend.entries[0][0] == "cortex"
    assert widget.legend._grid.count() == 3 * 4  # swatch, name, count per class; old rows gone


@pytest.mark.slow
def test_cancel_stops_within_an_epoch_and_a_second_training_runs(demo, qtbot):
    viewer, widget = demo
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    widget.adaptive.value = False
    widget.epochs.value = 500
    errors = []
    epochs_seen = []
    worker = widget.train(start=False)
    worker.errored.connect(errors.append)

    cancelled_at = []

    def on_progress(p):
        epochs_seen.append(p.epoch)
        if p.epoch == 2:
            cancelled_at.append(time.perf_counter())
            widget.cancel()

    worker.yielded.connect(on_progress)
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        worker.start()
    stop_delay = time.perf_counter() - cancelled_at[0]
    # the worker noticed the request between two batches, inside the epoch after the last it finished
    assert len(errors) == 1 and type(errors[0]).__name__ == "TrainingCancelled"
    assert f"during epoch {max(epochs_seen) + 1}" in str(errors[0])
    assert len(epochs_seen) < 20 and stop_delay < 5
    assert not widget.is_training and widget.train_button.isEnabled()
    assert keys.CONFIDENCE not in adata.obs and keys.CONFIDENCE not in layer.features  # nothing written
    assert "Cancelled" in widget.status.text()
    # the viewer is still usable and a second training completes
    viewer.layers.selection.active = layer
    train_and_wait(widget, qtbot, 3, calibrate=False)
    assert keys.CONFIDENCE in adata.obs and adata.uns[keys.UNS]["params"]["epochs"] == 3


def test_bad_annotation_is_a_notification_not_a_traceback(demo, qtbot, monkeypatch):
    viewer, widget = demo
    adata = widget.layer_combo.value.metadata["adata"]
    adata.obs["broken"] = adata.obs["label"].astype(object)
    adata.obs.iloc[0, adata.obs.columns.get_loc("broken")] = np.nan
    widget._on_layer_changed()
    widget.label_combo.value = "broken"
    messages = []
    monkeypatch.setattr("napari.utils.notifications.show_error", messages.append)
    worker = widget.train(start=False)
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        worker.start()
    assert len(messages) == 1 and "no label (NaN)" in messages[0] and "Traceback" not in messages[0]
    assert "Training failed" in widget.status.text() and widget.train_button.isEnabled()


@pytest.mark.slow
def test_screenshot_after_training_shows_coloured_spots_on_tissue(demo, qtbot, tmp_path):
    viewer, widget = demo
    train_and_wait(widget, qtbot, 20)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    from PIL import Image

    Image.fromarray(shot).save(tmp_path / "widget.png")
    rgb = canvas[..., :3].astype(int)
    assert rgb.std() > 20  # not blank
    # category colours present on the canvas: amber (ambiguous) and red (erroneous) spots ...
    amber = (abs(rgb[..., 0] - 255) < 40) & (abs(rgb[..., 1] - 159) < 40) & (rgb[..., 2] < 90)
    red = (abs(rgb[..., 0] - 214) < 40) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
    assert amber.sum() > 200 and red.sum() > 50  # the ambiguous ~5 % of spots and the erroneous ones
    # ... over the image: tissue pink is visible between the spots
    pink = (rgb[..., 0] > 200) & (rgb[..., 1] > 120) & (rgb[..., 1] < 190) & (rgb[..., 2] > 160)
    assert pink.sum() > 100


@pytest.mark.slow
def test_communities_dock_builds_the_graph_and_colours_by_community(demo, qtbot, monkeypatch):
    viewer, widget = demo
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    _, comm = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability communities")
    messages = []
    monkeypatch.setattr("napari.utils.notifications.show_error", messages.append)
    assert comm.run() is None and "train" in messages[0]  # nothing scored yet: says what to do
    train_and_wait(widget, qtbot, 10, calibrate=False)
    comm.resolution.value = 0.5
    worker = comm.run(start=False)
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        worker.start()
    assert keys.COMMUNITY in layer.features and keys.CONNECTIVITIES in adata.obsp
    assert adata.uns[keys.UNS]["communities"]["resolution"] == 0.5
    assert len(comm.legend.entries) == adata.obs[keys.COMMUNITY].nunique() > 1
    assert layer.metadata["color_by"] == keys.COMMUNITY


@pytest.mark.slow
def test_save_figure_writes_the_canvas_as_png(demo, tmp_path, monkeypatch):
    viewer, widget = demo
    from PIL import Image

    out = widget.save_figure(tmp_path / "figure.png")
    img = np.asarray(Image.open(out))
    assert img.ndim == 3 and img.shape[0] > 100 and img[..., :3].std() > 20
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]  # no temporary file left
    messages = []
    monkeypatch.setattr("napari.utils.notifications.show_error", messages.append)
    assert widget.save_figure(tmp_path / "missing" / "f.png") is None and "does not exist" in messages[0]


@pytest.mark.slow
def test_inspector_shows_the_selected_spot(demo, qtbot):
    viewer, widget = demo
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    _, insp = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability spot inspector")
    train_and_wait(widget, qtbot, 5, calibrate=False)
    layer.selected_data = {7}  # what a click in select mode does
    assert adata.obs_names[7] in insp.title.text()
    assert insp.values["confidence"].text() == f"{adata.obs[keys.CONFIDENCE].iloc[7]:.3f}"
    assert insp.values["annotated label"].text() == str(adata.obs["label"].iloc[7])
    (line,) = insp.ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), adata.obsm[keys.TRAJECTORY][7])


@pytest.mark.slow
def test_export_button_writes_results_and_waits_for_the_training(demo, qtbot, tmp_path, monkeypatch):
    import anndata as ad

    viewer, widget = demo
    layer = widget.layer_combo.value
    messages = []
    monkeypatch.setattr("napari.utils.notifications.show_error", messages.append)
    widget.adaptive.value = False
    widget.epochs.value = 5
    widget.calibrate.value = False
    worker = widget.train(start=False)
    # a training is running (not started yet, but the layer is taken): nothing is written
    assert widget.export(tmp_path / "mid.h5ad") is None and not (tmp_path / "mid.h5ad").exists()
    assert "training is running" in messages[-1]
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        worker.start()
    out = widget.export(tmp_path / "scored.h5ad")
    back = ad.read_h5ad(out)
    np.testing.assert_array_equal(back.obs[keys.CONFIDENCE].to_numpy(),
                                  layer.metadata["adata"].obs[keys.CONFIDENCE].to_numpy())
    assert widget.export(tmp_path / "spots.csv").endswith("spots.csv")
    assert widget.export(tmp_path / "spots.txt") is None and ".txt" in messages[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.h5ad", "spots.csv"]


@pytest.mark.slow
def test_a_click_on_a_spot_in_pan_zoom_mode_inspects_it(demo):
    from napari.utils._proxies import ReadOnlyWrapper
    from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

    viewer, widget = demo
    layer = widget.layer_combo.value
    insp = widget.open_dock("Annotatability spot inspector")
    assert layer.mode == "pan_zoom"
    pos = tuple(layer.data[42])

    def event(kind):
        from types import SimpleNamespace

        return ReadOnlyWrapper(SimpleNamespace(type=kind, position=pos, view_direction=None, dims_displayed=[0, 1],
                                               modifiers=[], button=1, handled=False, is_dragging=False))

    mouse_press_callbacks(layer, event("mouse_press"))
    mouse_release_callbacks(layer, event("mouse_release"))
    assert layer.metadata["adata"].obs_names[42] in insp.title.text()
    assert insp.values["annotated label"].text() == str(layer.metadata["adata"].obs["label"].iloc[42])


@pytest.mark.slow
def test_adaptive_recipe_shows_what_it_chose_and_trains_with_it(demo, qtbot):
    from napari_annotatability.core.recipes import adaptive_epochs

    viewer, widget = demo
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    assert widget.adaptive.value and not widget.epochs.enabled and not widget.lr.enabled
    assert widget.epochs.value == adaptive_epochs(adata.n_obs, 256)
    widget.batch_size.value = 512  # fewer steps per epoch: more epochs for the same budget
    assert widget.epochs.value == adaptive_epochs(adata.n_obs, 512)
    widget.adaptive.value = False
    assert widget.epochs.enabled and widget.lr.enabled
    widget.epochs.value = 4
    widget.calibrate.value = False
    worker = widget.train(start=False)
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        worker.start()
    params = adata.uns[keys.UNS]["params"]
    assert params["epochs"] == 4 and params["batch_size"] == 512
    assert widget.epochs.enabled  # the form comes back as it was
    widget.adaptive.value = True
    assert not widget.epochs.enabled
