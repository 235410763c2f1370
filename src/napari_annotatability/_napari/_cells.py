"""What the curation dock needs of a layer of cells, for spots (a Points layer).

The dock (``_curation.py``) only ever asks a layer of cells for: its AnnData, the cells
selected, the cells inside drawn shapes, to select one cell, to centre the view on it, its
nearest neighbours, and to show changed obs columns.  :class:`SpotCells` answers for a Points
layer; a layer of segmentation masks (Labels, one label id per cell) can answer the same
questions with its own class, and the dock does not change.
"""

from __future__ import annotations

import numpy as np

from ._selection import area_shape_layers, select_spots, spots_in_shapes

__all__ = ["SpotCells", "DEFAULT_SPOTS_ACROSS", "view_camera"]

#: the view shows about this many spot diameters across its shorter side when centring on a cell
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


class SpotCells:
    """A spots (Points) layer tied to its AnnData (``layer.metadata['adata']``), one point per obs row."""

    kind = "spots"

    def __init__(self, viewer, layer) -> None:
        self.viewer = viewer
        self.layer = layer
        self._tree = None
        self._tree_for = None
        self._zoom_set: float | None = None

    @property
    def adata(self):
        return self.layer.metadata["adata"]

    @property
    def name(self) -> str:
        return self.layer.name

    def is_open(self) -> bool:
        return self.layer in self.viewer.layers

    @property
    def training(self) -> bool:
        return bool(self.layer.metadata.get("training"))

    # -- selections ----------------------------------------------------------------------------
    def selection(self) -> np.ndarray:
        """The selected spots (clicked in select mode, or lassoed in the data map)."""
        return np.asarray(sorted(self.layer.selected_data), dtype=np.int64)

    def in_shapes(self) -> np.ndarray:
        """Spots inside the drawn areas of the Shapes layers (their selected shapes, if any are)."""
        mask = np.zeros(len(self.layer.data), dtype=bool)
        for shapes in area_shape_layers(self.viewer):
            if len(shapes.data):
                chosen = shapes.selected_data or None
                mask |= spots_in_shapes(self.layer, shapes, chosen)
        return np.flatnonzero(mask)

    def select(self, cell: int) -> None:
        """Make ``cell`` the layer's only selected spot (the spot inspector follows)."""
        if self.layer.selected_data != {int(cell)}:
            select_spots(self.layer, [int(cell)])

    # -- the view --------------------------------------------------------------------------------
    def world_position(self, cell: int) -> np.ndarray:
        """The spot's (row, col) in world coordinates (the layer's public data -> world transform)."""
        return np.asarray(self.layer.data_to_world(np.asarray(self.layer.data[int(cell)])), dtype=float)[-2:]

    def centre(self, cell: int, spots_across: float = DEFAULT_SPOTS_ACROSS) -> None:
        """Centre the view on ``cell`` and zoom so that ~``spots_across`` spots fill the view.

        The zoom is set on the first call and kept afterwards if the user changed it since.
        """
        camera = view_camera(self.viewer)
        size = np.asarray(self.layer.size, dtype=float)
        diameter = float(size[int(cell)] if size.ndim else size) * abs(float(self.layer.scale[-1]))
        if diameter > 0 and (self._zoom_set is None or np.isclose(camera.zoom, self._zoom_set, rtol=1e-3)):
            camera.zoom = _canvas_pixels(self.viewer) / (spots_across * diameter)
            self._zoom_set = float(camera.zoom)
        camera.center = tuple(float(v) for v in self.world_position(cell))

    def neighbours(self, cell: int, k: int = 8) -> np.ndarray:
        """The ``k`` spots nearest to ``cell`` on the slide (not itself)."""
        from scipy.spatial import cKDTree

        data = self.layer.data
        key = (id(data), len(data))
        if self._tree is None or self._tree_for != key:
            self._tree = cKDTree(np.asarray(data, dtype=float)[:, -2:])
            self._tree_for = key
        k = min(k + 1, len(data))
        _, idx = self._tree.query(np.asarray(data[int(cell)], dtype=float)[-2:], k=k)
        idx = np.atleast_1d(idx)
        return idx[idx != int(cell)][: k - 1]

    # -- showing obs -----------------------------------------------------------------------------
    def show_columns(self, columns) -> None:
        """Copy these obs columns into ``layer.features`` (a changed copy, as napari wants)."""
        obs = self.adata.obs
        feats = self.layer.features.copy()
        for c in columns:
            if c in obs:
                feats[c] = obs[c].reset_index(drop=True)
        self.layer.features = feats
