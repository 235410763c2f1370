"""Regenerate the screenshots of cells drawn as their segmentation mask (docs/napari.md).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/screenshots_cells.py

Opens the *synthetic cells* sample (a SpatialData store: DAPI + membrane pyramid, cell mask, a
table with planted mislabels) the way *File ▸ Open Sample* does, trains on ``label`` in the
widget, and saves the cells coloured by category on the mask, then a zoom on a planted mislabel
selected (its outline) with the spot inspector, the cursor resting on it (the status bar names it).
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parent / "images"


def main() -> None:
    import napari
    import numpy as np
    from napari.layers import Layer
    from PIL import Image
    from qtpy.QtWidgets import QApplication

    from napari_annotatability._napari._colors import is_mask_layer
    from napari_annotatability._napari._model import cell_layer
    from napari_annotatability._napari._sample import synthetic_cells
    from napari_annotatability.core import keys

    OUT.mkdir(exist_ok=True)
    viewer = napari.Viewer(show=True, title="napari-annotatability")
    viewer.window.resize(1500, 950)
    for data in synthetic_cells():
        viewer.add_layer(Layer.create(*data))
    app = QApplication.instance()

    def save(name):
        for _ in range(30):
            app.processEvents()
        Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).convert("RGB").save(
            OUT / name, optimize=True)

    _, widget = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability")
    mask = next(lyr for lyr in viewer.layers if is_mask_layer(lyr))
    widget.train_on(mask, "label", start=False)
    worker = widget.worker
    worker.start()
    while widget.is_training:
        app.processEvents()
    widget.show_feature(keys.CATEGORY, layer=mask)
    viewer.reset_view()
    save("11-cells-mask-categories.png")

    adata = mask.metadata["adata"]
    cell = cell_layer(viewer, mask)
    wrong = np.flatnonzero(adata.obs["mislabelled"].to_numpy() & (adata.obs[keys.CATEGORY] == "erroneous").to_numpy())
    row = int(wrong[0]) if wrong.size else int(adata.obs["mislabelled"].to_numpy().argmax())
    viewer.window.remove_dock_widget(widget)
    viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability spot inspector")
    cell.select([row])
    cell.centre(row, spots_across=12)
    # the cursor resting on the cell: the status bar names it and its category (napari would show the
    # colour class the mask layer stores)
    viewer.layers.selection.active = mask
    viewer.mouse_over_canvas = True
    viewer.cursor.position = tuple(cell.world_position(row))
    viewer.window._qt_window.set_status_and_tooltip(viewer._calc_status_from_cursor())
    save("12-cells-mask-inspector.png")
    viewer.close()


if __name__ == "__main__":
    main()
