"""Regenerate docs/images/curation.png and curation-change.png (needs a display: xvfb-run on a server).

    xvfb-run -a -s "-screen 0 1700x1200x24" python docs/screenshot_curation.py

By clicks, as a person does it (``QTest.mouseClick``; waits run Qt's event loop): the synthetic
sample is trained, every erroneous spot's suggestion accepted through the review queue, the annotation retrained on the curated labels; then a second review of what is still
suspicious is under way: the view is centred on the spot under review, the curation dock shows
it with its neighbours, the before/after table of the retraining, and the spot inspector its
trajectory.  The second image is the whole section right after the retraining, coloured by how
each spot's category moved (*Colour by change*), with the legend's counts.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "images"
sys.path.insert(0, str(HERE))


def main() -> None:
    import napari
    from PIL import Image
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QDockWidget

    from _clicks import click, wait
    from napari_annotatability._napari._cells import view_camera
    from napari_annotatability._napari._demo import open_demo

    OUT.mkdir(exist_ok=True)
    viewer = napari.Viewer(show=True, title="napari-annotatability")
    viewer.window.resize(1600, 1150)
    viewer, widget = open_demo(viewer)
    wait(ms=500)
    click(widget.train_button)
    wait(widget.training_finished)
    click(widget.dock_buttons["Curate"])
    _, dock = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability curation")
    dock.queue_combo.setCurrentText("erroneous")
    click(dock.start_button)
    while not dock.queue.done:
        click(dock.buttons["accept"])
    click(dock.buttons["retrain"])
    wait(widget.training_finished)
    wait(ms=500)
    click(dock.buttons["color_change"])  # the whole section in view
    camera = view_camera(viewer)
    zoom, center = camera.zoom, camera.center
    viewer.reset_view()
    wait(ms=1000)
    change = Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).convert("RGB")
    change.save(OUT / "curation-change.png", optimize=True)
    print(f"wrote {OUT / 'curation-change.png'} ({change.size[0]} x {change.size[1]})")
    click(widget.color_buttons["Category"])
    camera.zoom, camera.center = zoom, center  # the review's zoom (the dock keeps the user's)
    # a person's arrangement for reviewing: the training dock closed, the spot inspector dragged to
    # the left under the layer list, the curation dock on the right
    viewer.window.remove_dock_widget(widget)
    insp_dock, _ = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability spot inspector")
    window = insp_dock.parentWidget()
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, insp_dock)
    docks = {d.windowTitle().split(" (")[0]: d for d in window.findChildren(QDockWidget) if d.isVisible()}
    window.resizeDocks([docks["layer list"], docks["Spot"]], [200, 600], Qt.Orientation.Vertical)
    dock.queue_combo.setCurrentText("suspicious")
    click(dock.start_button)
    for _ in range(11):
        click(dock.buttons["skip"])
    click(dock.buttons["next"])
    wait(ms=1500)
    img = Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).convert("RGB")
    # no palette quantisation: a median cut merges the legend's small red swatch into the orange
    img.save(OUT / "curation.png", optimize=True)
    print(f"wrote {OUT / 'curation.png'} ({img.size[0]} x {img.size[1]})")
    viewer.close()


if __name__ == "__main__":
    main()
