"""Regenerate docs/images/curation.png and curation-change.png (needs a display: xvfb-run on a server).

    xvfb-run -a -s "-screen 0 1700x1200x24" python docs/screenshot_curation.py

The synthetic sample is trained, every erroneous spot's suggestion accepted through the review
queue, the annotation retrained on the curated labels; then a second review of what is still
suspicious is under way: the view is centred on the spot under review, the curation dock shows
it with its neighbours, the before/after table of the retraining, and the spot inspector its
trajectory.  The second image is the whole section right after the retraining, coloured by how
each spot's category moved (*Colour by change*), with the legend's counts.
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parent / "images"


def main() -> None:
    import napari
    from PIL import Image
    from qtpy.QtWidgets import QApplication

    from napari_annotatability._napari._cells import view_camera
    from napari_annotatability._napari._demo import open_demo
    from napari_annotatability.core import keys

    OUT.mkdir(exist_ok=True)
    viewer = napari.Viewer(show=True, title="napari-annotatability")
    viewer.window.resize(1600, 1150)
    viewer, widget = open_demo(viewer)
    app = QApplication.instance()

    def settle(n: int = 30) -> None:
        for _ in range(n):
            app.processEvents()

    widget.train()
    while widget.is_training:
        app.processEvents()
    dock = widget.open_dock("Annotatability curation")
    queue = dock.start_review("erroneous")
    while not queue.done:
        dock.accept()
    worker = dock.retrain()
    while dock.is_retraining or widget.is_training:
        app.processEvents()
    settle()
    dock.color(keys.CATEGORY_CHANGE)  # Colour by change, the whole section in view
    camera = view_camera(viewer)
    zoom, center = camera.zoom, camera.center
    viewer.reset_view()
    settle(60)
    change = Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).convert("RGB")
    change.save(OUT / "curation-change.png", optimize=True)
    print(f"wrote {OUT / 'curation-change.png'} ({change.size[0]} x {change.size[1]})")
    dock.color(keys.CATEGORY)
    camera.zoom, camera.center = zoom, center  # the review's zoom (the dock keeps the user's)
    viewer.window.remove_dock_widget(widget)  # room for the curation dock
    # the spot inspector under the layer list, on the left
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QDockWidget

    insp_dock, _ = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability spot inspector")
    insp_dock.parentWidget().addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, insp_dock)
    window = insp_dock.parentWidget()
    docks = {d.windowTitle().split(" (")[0]: d for d in window.findChildren(QDockWidget) if d.isVisible()}
    window.resizeDocks([docks["Annotatability legend"], docks["Annotatability curation"]], [120, 1000],
                       Qt.Orientation.Vertical)
    window.resizeDocks([docks["layer list"], docks["Annotatability spot inspector"]], [200, 600],
                       Qt.Orientation.Vertical)
    dock.start_review("suspicious")
    for _ in range(11):
        dock.skip()
    dock.next_cell()
    settle(60)
    img = Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).convert("RGB")
    # no palette quantisation: a median cut merges the legend's small red swatch into the orange
    img.save(OUT / "curation.png", optimize=True)
    print(f"wrote {OUT / 'curation.png'} ({img.size[0]} x {img.size[1]}); {worker is not None=}")
    viewer.close()


if __name__ == "__main__":
    main()
