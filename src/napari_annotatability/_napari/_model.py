"""One model per viewer of its layers of cells, and one per layer (no Qt).

A *cell layer* is a napari layer tied to an AnnData (``layer.metadata['adata']``): a Points layer
(one point per obs row, or per entry of ``metadata['rows']``) or a Labels layer of a segmentation
(``metadata['mask']``: a ``_mask.CellMask``, ``metadata['centroids']``: world (row, col) of each
cell).  :class:`CellLayer` answers what every dock asks of one, the same way for both kinds, in
**obs rows** of its AnnData: the selection, positions, the cell under the mouse, the cells inside
drawn shapes, colouring.  :class:`CellModel` is the viewer's list of them with the signals docks
subscribe to (``layers_changed``, ``current_changed``, ``selection_changed``, ``results_changed``,
``clicked``); :func:`cell_model` gives a viewer's model.  Geometry goes through napari's public
transforms only (``data_to_world`` / ``world_to_data``).
"""

from __future__ import annotations

import weakref

import numpy as np
from psygnal import Signal

from ._cell_kinds import MaskCells, SpotCells
from ._cells import DEFAULT_SPOTS_ACROSS, CellLayer, is_cell_layer, view_camera
from ._selection import area_shape_layers, shape_edit_finished

__all__ = ["CellModel", "cell_model", "real_viewer", "cell_layer", "is_cell_layer", "CellLayer", "SpotCells", "MaskCells",
           "view_camera", "DEFAULT_SPOTS_ACROSS"]

_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def real_viewer(viewer):
    """The viewer itself, not the ``PublicOnlyProxy`` napari hands a plugin's docks.

    Each dock gets a proxy of its own, and what a proxy returns is proxied too: a layer added
    through one is not the object the viewer's layer list holds (a model keyed by ``id(layer)``
    missed the centroid layer it had just added), and a registry keyed by a proxy lives only as
    long as that proxy.  Registries and the model hold the viewer itself; no private attribute is
    read through it.
    """
    return getattr(viewer, "__wrapped__", viewer)


def cell_model(viewer) -> CellModel:
    """The cell model of ``viewer`` (made on first use, one per viewer)."""
    viewer = real_viewer(viewer)
    model = _MODELS.get(viewer)
    if model is None:
        model = _MODELS[viewer] = CellModel(viewer)
    return model


def cell_layer(viewer, layer) -> CellLayer | None:
    """The :class:`CellLayer` of ``layer`` in ``viewer`` (None: not a layer of cells)."""
    return cell_model(viewer).get(layer)


class CellModel:
    """The layers of cells of one viewer, and the signals the docks subscribe to.

    Signals
    -------
    layers_changed()
        a layer of cells was added or removed.
    current_changed(cell)
        the active layer is now this layer of cells (or its selection outline).
    selection_changed(cell, rows)
        the selected obs rows of ``cell`` changed (a click, a lasso in the data map, a drawn shape).
    results_changed(cell)
        the AnnData of ``cell`` has new results (a training finished, curation edits, communities).
    clicked(cell, row)
        a click (no drag) in pan/zoom mode on the cell of obs row ``row``.
    """

    layers_changed = Signal()
    current_changed = Signal(object)
    selection_changed = Signal(object, object)
    results_changed = Signal(object)
    clicked = Signal(object, int)

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self._cells: dict[int, CellLayer] = {}
        self._shapes: dict[int, tuple] = {}
        self._twins: dict[int, object] = {}  # id(mask layer) -> its centroid Points layer, and back
        self.current: CellLayer | None = None
        viewer.layers.events.inserted.connect(self._on_layers)
        viewer.layers.events.removed.connect(self._on_layers)
        viewer.layers.selection.events.active.connect(self._on_active)
        self._on_layers()

    # -- layers ------------------------------------------------------------------------------------
    def cells(self, require: str | None = None, kind: str | None = None, var: str | None = None) -> list[CellLayer]:
        """The layers of cells, in viewer order; optionally those whose obs has ``require``, whose
        var has ``var``, or of one ``kind`` ("spots" / "cells")."""
        out = []
        for lyr in self.viewer.layers:
            cell = self._cells.get(id(lyr))
            if cell is None or cell.layer is not lyr:
                continue
            if kind is not None and cell.kind != kind:
                continue
            if require is not None and require not in cell.adata.obs:
                continue
            if var is not None and var not in cell.adata.var:
                continue
            out.append(cell)
        return out

    def layers(self, **filters) -> list:
        """The napari layers of :meth:`cells` (for layer pickers)."""
        return [c.layer for c in self.cells(**filters)]

    def get(self, layer) -> CellLayer | None:
        if layer is None:
            return None
        cell = self._cells.get(id(layer))
        return cell if cell is not None and cell.layer is layer else None

    def sharing(self, adata) -> list[CellLayer]:
        """Every open layer of cells that shows ``adata`` (sections of one table share it)."""
        return [c for c in self.cells() if c.adata is adata]

    def _on_layers(self, _event=None) -> None:
        from napari.layers import Shapes

        present = {id(lyr): lyr for lyr in self.viewer.layers}
        changed = False
        for key in [k for k, c in self._cells.items() if present.get(k) is not c.layer]:
            self._cells.pop(key).detach()
            changed = True
        for key in [k for k, (lyr, _) in self._shapes.items() if present.get(k) is not lyr]:
            lyr, slot = self._shapes.pop(key)
            lyr.events.data.disconnect(slot)
        for lyr in self.viewer.layers:
            if id(lyr) not in self._cells and is_cell_layer(lyr):
                kind = MaskCells if "mask" in lyr.metadata else SpotCells
                self._cells[id(lyr)] = kind(self, lyr)
                changed = True
            elif isinstance(lyr, Shapes) and id(lyr) not in self._shapes:
                slot = (lambda e, s=lyr: self._on_shapes(s, e))
                lyr.events.data.connect(slot)
                self._shapes[id(lyr)] = (lyr, slot)
                if len(lyr.data):  # a layer opened with regions already drawn
                    self._on_shapes(lyr, None)
        if self.current is not None and self.get(self.current.layer) is None:
            self.current = None
        if changed:
            self.layers_changed.emit()
        self._on_active()

    def _on_active(self, _event=None) -> None:
        active = self.viewer.layers.selection.active
        cell = self.get(active) or next((c for c in self._cells.values() if c.owns(active)), None)
        if cell is not None and cell is not self.current:
            self.current = cell
            self.current_changed.emit(cell)

    def _on_shapes(self, shapes, event) -> None:
        """A drawn shape selects the cells whose centre is inside it, on every layer of cells."""
        if event is not None and not shape_edit_finished(event):
            return
        for cell in self.cells():
            if cell.layer.visible:
                cell.select(cell.rows_in_shapes(shapes))

    def shape_layers(self) -> list:
        return area_shape_layers(self.viewer)

    # -- results -----------------------------------------------------------------------------------
    def notify_results(self, adata) -> None:
        """The AnnData has new results: refresh every layer that shows it, then say so."""
        for cell in self.sharing(adata):
            cell.sync()
        for cell in self.sharing(adata):
            self.results_changed.emit(cell)

    # -- mask <-> centroid points ------------------------------------------------------------------
    def twin(self, cell: CellLayer) -> CellLayer | None:
        """The other view of the same cells (a mask's centroid points, or the points' mask)."""
        other = self._twins.get(id(cell.layer))
        return self.get(other)

    def toggle_points(self, cell: CellLayer) -> CellLayer:
        """Switch between a mask and its cells' centroid points; returns the layer now shown.

        The first switch of a mask adds a Points layer of the same AnnData and rows (one point per
        cell at its centroid); later switches show one and hide the other.
        """
        other = self.twin(cell)
        if other is None:
            if cell.kind != "cells":
                raise ValueError(f"{cell.name!r} is a layer of spots: it has no mask to switch to")
            other = self._add_points_twin(cell)
        selected = cell.selection()
        cell.set_shown(False)
        other.set_shown(True)
        other.select(selected)  # the same cells stay selected
        self.viewer.layers.selection.active = other.layer
        return other

    def _add_points_twin(self, cell: CellLayer) -> CellLayer:
        meta = cell.layer.metadata
        pts = cell.world_positions()
        size = max(cell.cell_diameter() * 0.8, 1e-6)
        metadata = {"adata": cell.adata, "units": meta.get("units", "pixel"), "source_path": meta.get("source_path"),
                    "color_by": meta.get("color_by")}
        if meta.get("rows") is not None:
            metadata["rows"] = np.asarray(meta["rows"])
        features = cell.obs().reset_index(drop=True)
        layer = self.viewer.add_points(pts, name=f"{cell.name} (centroids)", size=size, features=features,
                                       border_width=0, metadata={k: v for k, v in metadata.items() if v is not None})
        self._twins[id(cell.layer)] = layer
        self._twins[id(layer)] = cell.layer
        points = self.get(layer)
        key = meta.get("color_by")
        if key is not None and key in cell.adata.obs:
            points.color_by(key)
        return points

