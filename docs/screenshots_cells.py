"""Regenerate the screenshots of cells drawn as their segmentation mask (docs/napari.md).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/screenshots_cells.py

Opens the *synthetic cells* sample (a SpatialData store: DAPI + membrane pyramid, cell mask, a
table with planted mislabels) the way *File ▸ Open Sample* does, clicks Train on ``label`` in the
widget, and saves the cells coloured by category on the mask, then a zoom on a planted mislabel
selected (its outline) with the spot inspector, the cursor resting on it (the status bar names it).
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
    from napari.layers import Layer
    from PIL import Image

    from _clicks import click, wait
    from napari_annotatability._napari._colors import is_mask_layer
    from napari_annotatability._napari._model import cell_layer
    from napari_annotatability._napari._sample import synthetic_cells
    from napari_annotatability.core import keys

    OUT.mkdir(exist_ok=True)
    viewer = napari.Viewer(show=True, title="napari-annotatability")
    viewer.window.resize(1500, 950)
    for data in synthetic_cells():
        viewer.add_layer(Layer.create(*data))

    def save(name):
        wait(ms=600)
        Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).convert("RGB").save(
            OUT / name, optimize=True)

    _, widget = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability")
    mask = next(lyr for lyr in viewer.layers if is_mask_layer(lyr))
    widget.layer_combo.value = mask  # picked in the cells list
    widget.label_combo.value = "label"
    click(widget.train_button)
    wait(widget.training_finished)
    click(widget.color_buttons["Category"])
    viewer.reset_view()
    save("11-cells-mask-categories.png")

    adata = mask.metadata["adata"]
    cell = cell_layer(viewer, mask)
    wrong = np.flatnonzero(adata.obs["mislabelled"].to_numpy() & (adata.obs[keys.CATEGORY] == "erroneous").to_numpy())
    row = int(wrong[0]) if wrong.size else int(adata.obs["mislabelled"].to_numpy().argmax())
    click(widget.dock_buttons["Spot"])
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
