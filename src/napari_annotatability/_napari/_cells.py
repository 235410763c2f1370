"""One layer of cells, as every dock sees it: spots (Points) or a segmentation mask (Labels).

Everything is in **obs rows** of the layer's AnnData.  A layer may show only some rows (one
section of a table shared by several layers: ``metadata['rows']``); its *positions* are then
0..n-1 along those rows.  ``_cell_kinds.SpotCells`` answers for a Points layer (one point per shown
row), ``_cell_kinds.MaskCells`` for a Labels layer of cells (``metadata['mask']``, a
``_mask.CellMask``, and ``metadata['centroids']``).  The per-viewer list and the signals are in
``_model``.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager

import numpy as np
import pandas as pd

from ._selection import area_shape_layers, inside_shapes

__all__ = ["CellLayer", "is_cell_layer", "view_camera", "DEFAULT_SPOTS_ACROSS"]

#: the view shows about this many cell diameters across its shorter side when centring on a cell
DEFAULT_SPOTS_ACROSS = 15


def view_camera(viewer):
    """The viewer's camera (``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    camera = getattr(scene, "camera", None)
    return camera if camera is not None else viewer.camera


def _canvas_pixels(viewer) -> float:
    """The shorter side of the canvas in screen pixels (600 when the viewer does not say)."""
    size = getattr(getattr(viewer, "canvas", None), "size", None)
    return float(min(size)) if size is not None and min(size) > 0 else 600.0


def is_cell_layer(layer) -> bool:
    """A Points layer with ``metadata['adata']``, or a Labels layer with ``adata`` and ``mask``."""
    from napari.layers import Labels, Points

    meta = getattr(layer, "metadata", None) or {}
    if "adata" not in meta:
        return False
    return isinstance(layer, Points) or (isinstance(layer, Labels) and "mask" in meta)


class CellLayer:
    """A layer of cells tied to its AnnData; see :class:`SpotCells` and :class:`MaskCells`."""

    kind = ""

    def __init__(self, model, layer) -> None:
        self._model = weakref.ref(model)
        self.viewer = model.viewer
        self.layer = layer
        self._lookup = None
        self._tree = None
        self._tree_key = None
        self._zoom_set: float | None = None
        self._quiet = False
        layer.mouse_drag_callbacks.append(self._on_click)

    # -- what it shows -----------------------------------------------------------------------------
    @property
    def model(self):
        return self._model()

    @property
    def adata(self):
        return self.layer.metadata["adata"]

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def training(self) -> bool:
        return bool(self.layer.metadata.get("training"))

    def is_open(self) -> bool:
        return self.layer in self.viewer.layers

    def owns(self, layer) -> bool:
        """Whether ``layer`` is this layer (or a helper layer of it, e.g. a selection outline)."""
        return layer is self.layer

    @property
    def rows(self) -> np.ndarray:
        """The obs rows this layer shows, in its order (every row when ``metadata['rows']`` is None)."""
        rows = self.layer.metadata.get("rows")
        return np.arange(self.adata.n_obs) if rows is None else np.asarray(rows, dtype=np.int64)

    @property
    def n(self) -> int:
        rows = self.layer.metadata.get("rows")
        return self.adata.n_obs if rows is None else len(rows)

    def positions(self, rows) -> np.ndarray:
        """The positions of obs ``rows`` on this layer (-1 for rows it does not show)."""
        rows = np.asarray(rows, dtype=np.int64).ravel()
        if self.layer.metadata.get("rows") is None:
            return np.where((rows >= 0) & (rows < self.adata.n_obs), rows, -1)
        if self._lookup is None or len(self._lookup) != self.adata.n_obs:
            lookup = np.full(self.adata.n_obs, -1, dtype=np.int64)
            lookup[self.rows] = np.arange(self.n)
            self._lookup = lookup
        ok = (rows >= 0) & (rows < len(self._lookup))
        return np.where(ok, self._lookup[np.where(ok, rows, 0)], -1)

    def obs(self) -> pd.DataFrame:
        """The obs rows this layer shows (a copy, index kept)."""
        obs = self.adata.obs
        return obs.copy() if self.layer.metadata.get("rows") is None else obs.iloc[self.rows].copy()

    def values(self, key: str) -> pd.Series:
        """The values of ``key`` for the shown rows (0..n-1 index): obs, or what the layer shows."""
        col = self.adata.obs[key]
        col = col if self.layer.metadata.get("rows") is None else col.iloc[self.rows]
        return col.reset_index(drop=True)

    def detach(self) -> None:
        """Stop listening to the layer (it left the viewer)."""
        if self._on_click in self.layer.mouse_drag_callbacks:
            self.layer.mouse_drag_callbacks.remove(self._on_click)

    # -- positions --------------------------------------------------------------------------------
    def world_positions(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def cell_diameter(self) -> float:
        """A typical cell diameter in world units: the median distance to the nearest cell."""
        tree = self._kdtree()
        if tree.n < 2:
            return 10.0
        d, _ = tree.query(tree.data[: min(tree.n, 2000)], k=2)
        d = d[:, 1][np.isfinite(d[:, 1]) & (d[:, 1] > 0)]
        return float(np.median(d)) if d.size else 10.0

    def world_position(self, row: int) -> np.ndarray:
        """World (row, col) of obs row ``row``."""
        pos = self.positions([row])[0]
        if pos < 0:
            raise IndexError(f"obs row {row} is not shown on {self.name!r}")
        return np.asarray(self.world_positions()[pos], dtype=float)

    def _kdtree(self):
        from scipy.spatial import cKDTree

        pts = self.world_positions()
        key = (id(self.layer.data), len(pts), self.layer.metadata.get("rows") is None)
        if self._tree is None or self._tree_key != key:
            self._tree, self._tree_key = cKDTree(np.asarray(pts, dtype=float)), key
        return self._tree

    def neighbours(self, row: int, k: int = 8) -> np.ndarray:
        """The obs rows of the ``k`` cells nearest to ``row`` on the slide (not itself)."""
        tree = self._kdtree()
        pos = int(self.positions([row])[0])
        if pos < 0 or tree.n < 2:
            return np.zeros(0, dtype=np.int64)
        _, idx = tree.query(tree.data[pos], k=min(k + 1, tree.n))
        idx = np.atleast_1d(idx)
        return self.rows[idx[idx != pos][:k]]

    def rows_in_shapes(self, shapes_layer, indices=None) -> np.ndarray:
        """Obs rows of the cells whose centre is inside the area shapes of ``shapes_layer``."""
        return self.rows[inside_shapes(self.world_positions(), shapes_layer, indices)]

    def in_shapes(self) -> np.ndarray:
        """Obs rows inside the drawn areas of every Shapes layer (their selected shapes, if any are)."""
        inside = np.zeros(self.n, dtype=bool)
        pts = self.world_positions()
        for shapes in area_shape_layers(self.viewer):
            if len(shapes.data):
                inside |= inside_shapes(pts, shapes, shapes.selected_data or None)
        return self.rows[inside]

    def row_at_world(self, position) -> int | None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the view ---------------------------------------------------------------------------------
    def centre(self, row: int, spots_across: float = DEFAULT_SPOTS_ACROSS) -> None:
        """Centre the view on ``row`` and zoom so that ~``spots_across`` cells fill the view.

        The zoom is set on the first call and kept afterwards if the user changed it since.
        """
        camera = view_camera(self.viewer)
        diameter = self._diameter_of(row)
        if diameter > 0 and (self._zoom_set is None or np.isclose(camera.zoom, self._zoom_set, rtol=1e-3)):
            camera.zoom = _canvas_pixels(self.viewer) / (spots_across * diameter)
            self._zoom_set = float(camera.zoom)
        camera.center = tuple(float(v) for v in self.world_position(row))

    def diameter(self, row: int) -> float:
        """The diameter of the cell of obs ``row`` in world units (a typical one for a mask's cells)."""
        return self._diameter_of(row)

    def _diameter_of(self, row: int) -> float:
        return self.cell_diameter()

    def set_shown(self, shown: bool) -> None:
        self.layer.visible = bool(shown)

    # -- selection ----------------------------------------------------------------------------------
    def selection(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def select(self, rows) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _emit_selection(self) -> None:
        model = self.model
        if model is not None and not self._quiet:
            model.selection_changed.emit(self, self.selection())

    @contextmanager
    def _quietly(self):
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def _on_click(self, layer, event):
        """A click without a drag in pan/zoom mode: ``clicked`` (a mask also selects the cell)."""
        if getattr(layer, "mode", "pan_zoom") != "pan_zoom":
            return
        start = tuple(event.position)
        yield
        while event.type == "mouse_move":
            yield
        if event.type == "mouse_release" and tuple(event.position) == start:
            row = self.row_at_world(start)
            if row is not None:
                self.clicked(row)

    def clicked(self, row: int) -> None:
        """What a click on the cell of obs row ``row`` does."""
        model = self.model
        if model is not None:
            model.clicked.emit(self, int(row))

    # -- colours and obs --------------------------------------------------------------------------
    def sync(self, overrides: dict | None = None) -> None:
        """Show what the AnnData holds now (plus ``overrides``: key -> values per obs row)."""

    def show_columns(self, columns) -> None:
        """These obs columns changed: show them (and recolour if the layer is coloured by one)."""
        self.sync()
        key = self.layer.metadata.get("color_by")
        if key in set(columns) and key in self.adata.obs:
            self.color_by(key)

    def color_by(self, key: str) -> dict | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def live_update(self, key: str, values) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def counts(self, key: str) -> dict[str, int]:
        """How many shown cells have each value of ``key`` (for a legend)."""
        return self.shown_values(key).astype(str).value_counts().to_dict()

    def shown_values(self, key: str) -> pd.Series:
        return self.values(key)

