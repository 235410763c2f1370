"""Regenerate the screenshots in docs/images (needs a display: run under xvfb-run on a server).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/screenshots.py
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parent / "images"


def main() -> None:
    import napari
    from PIL import Image
    from qtpy.QtWidgets import QApplication

    from napari_annotatability._napari._demo import open_demo
    from napari_annotatability.core import keys

    OUT.mkdir(exist_ok=True)
    viewer = napari.Viewer(show=True, title="napari-annotatability")
    viewer.window.resize(1500, 950)
    viewer, widget = open_demo(viewer)
    app = QApplication.instance()

    def settle():
        for _ in range(30):
            app.processEvents()

    def save(name):
        settle()
        img = Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).convert("RGB")
        img.quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(OUT / name, optimize=True)

    save("01-demo-opened.png")
    box = {}
    worker = widget.train(start=False)

    def grab(p):  # the live recolouring, mid-training
        if p.stage == "training" and p.epoch == 5 and "mid" not in box:
            box["mid"] = True
            save("02-training-live.png")

    worker.yielded.connect(grab)
    worker.start()
    while widget.is_training:
        app.processEvents()
    save("03-categories.png")
    widget.show_feature(keys.CONFIDENCE)
    save("04-confidence.png")
    widget.show_feature(keys.SUGGESTED_LABEL)
    save("05-suggested-label.png")
    _, comm = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability communities")
    comm.resolution.value = 0.5
    comm.run()
    while comm.worker is not None:
        app.processEvents()
    save("06-communities.png")
    for w in (comm, widget):  # room for the inspector
        viewer.window.remove_dock_widget(w)
    _, insp = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability spot inspector")
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    layer.selected_data = {int(adata.obs["mislabelled"].to_numpy().argmax())}  # a planted mislabel
    save("07-inspector.png")
    viewer.window.remove_dock_widget(insp)

    import numpy as np

    # data map: a lasso around the low-confidence corner selects those spots on the tissue
    dmap = widget.open_dock("Annotatability data map")
    widget.show_feature(keys.CATEGORY)
    dmap.select_in_map([(0.0, -0.02), (0.35, -0.02), (0.35, 0.45), (0.0, 0.45)])
    layer.mode = "select"
    save("08-data-map.png")
    dmap.clear_selection()
    layer.mode = "pan_zoom"
    # region inspector: an ellipse over the graded cortex/medulla transition zone
    region = widget.open_dock("Annotatability region inspector")
    viewer.window.remove_dock_widget(dmap)
    zone = layer.data[adata.obs["transition"].to_numpy()]
    centre = zone.mean(axis=0)
    shapes = viewer.add_shapes(name="regions", edge_color="#ffff00", face_color=[1, 1, 0, 0.15], edge_width=12)
    shapes.add_ellipses(np.array([centre, zone.std(axis=0) * 1.2]))
    viewer.layers.selection.active = layer
    save("09-region-inspector.png")
    viewer.window.remove_dock_widget(region)
    viewer.layers.remove(shapes)
    # genes: the table, and the spots coloured by the top gene of the ambiguous (mid) ranking
    genes = widget.open_dock("Annotatability genes")
    genes.ranking.value = "mid confidence (ambiguous)"
    genes.table.selectRow(0)
    genes.show_gene(genes.genes[0])
    save("10-genes.png")
    viewer.close()


if __name__ == "__main__":
    main()
