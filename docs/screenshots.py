"""Regenerate the screenshots in docs/images (needs a display: run under xvfb-run on a server).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/screenshots.py

Made the way a person makes them: every button is clicked (``QTest.mouseClick``) and every wait
runs Qt's event loop.  Three things stand in for a mouse gesture on the canvas or the plot: the
spot selected for the inspector (a click in select mode), the lasso in the data map (its
result, ``select_in_map``) and the ellipse of the region inspector (a drawn shape).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "images"
sys.path.insert(0, str(HERE))


def main() -> None:
    import napari
    import numpy as np
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest

    from _clicks import click, save, wait
    from napari_annotatability._napari._demo import open_demo

    OUT.mkdir(exist_ok=True)
    viewer = napari.Viewer(show=True, title="napari-annotatability")
    viewer.window.resize(1500, 950)
    viewer, widget = open_demo(viewer)
    save(viewer, OUT / "01-demo-opened.png")

    shots = {}

    def grab(p):  # the live recolouring, mid-training
        if p.stage == "training" and p.epoch == 5 and "mid" not in shots:
            shots["mid"] = True
            wait(ms=100)
            save(viewer, OUT / "02-training-live.png")

    click(widget.train_button)
    widget.worker.yielded.connect(grab)
    wait(widget.training_finished)
    save(viewer, OUT / "03-categories.png")
    click(widget.color_buttons["Confidence"])
    save(viewer, OUT / "04-confidence.png")
    click(widget.color_buttons["Suggested"])
    save(viewer, OUT / "05-suggested-label.png")

    click(widget.dock_buttons["Communities"])
    _, comm = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability communities")
    comm.resolution.value = 0.5
    click(comm.run_button)
    wait(comm.worker.finished)
    save(viewer, OUT / "06-communities.png")

    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    click(widget.color_buttons["Category"])
    click(widget.dock_buttons["Spot"])
    layer.selected_data = {int(adata.obs["mislabelled"].to_numpy().argmax())}  # a planted mislabel, clicked
    save(viewer, OUT / "07-inspector.png")
    layer.selected_data = set()

    # data map: a lasso around the low-confidence corner selects those spots on the tissue
    click(widget.dock_buttons["Data map"])
    _, dmap = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability data map")
    dmap.select_in_map([(0.0, -0.02), (0.35, -0.02), (0.35, 0.45), (0.0, 0.45)])
    layer.mode = "select"
    save(viewer, OUT / "08-data-map.png")
    click(dmap.clear_button)
    layer.mode = "pan_zoom"

    # region inspector: an ellipse over the graded cortex/medulla transition zone
    click(widget.dock_buttons["Region"])
    zone = layer.data[adata.obs["transition"].to_numpy()]
    shapes = viewer.add_shapes(name="regions", edge_color="#ffff00", face_color=[1, 1, 0, 0.15], edge_width=12)
    shapes.add_ellipses(np.array([zone.mean(axis=0), zone.std(axis=0) * 1.2]))
    viewer.layers.selection.active = layer
    save(viewer, OUT / "09-region-inspector.png")
    viewer.layers.remove(shapes)

    # genes: the table, and the spots coloured by the top gene of the ambiguous (mid) ranking (a click on it)
    click(widget.dock_buttons["Genes"])
    _, genes = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability genes")
    genes.ranking.value = "mid confidence (ambiguous)"
    wait(ms=200)
    rect = genes.table.visualItemRect(genes.table.item(0, 0))
    QTest.mouseClick(genes.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    save(viewer, OUT / "10-genes.png")
    viewer.close()


if __name__ == "__main__":
    main()
