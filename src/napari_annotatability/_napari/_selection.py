"""Which spots a drawn region covers, and selecting spots on a layer (no Qt).

Pure geometry over napari's public API: positions go from a layer's data coordinates to world
coordinates through its public transforms (``_transforms.data_to_world``).
"""

from __future__ import annotations

import numpy as np
from matplotlib.path import Path

__all__ = ["AREA_SHAPES", "inside_shape", "spots_in_shapes", "world_points", "area_shape_layers",
           "shape_edit_finished", "to_world", "shape_vertices_world",
           "inside_shapes"]

#: Shapes types that enclose an area (lines and paths do not)
AREA_SHAPES = ("polygon", "rectangle", "ellipse")


def inside_shape(shape_type: str, vertices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Boolean mask of ``points`` (n, 2) inside one shape given by its (m, 2) ``vertices``.

    An ellipse is stored by napari as the 4 corners of its (possibly rotated) bounding box.
    Points on the boundary count as inside.  Lines and paths cover nothing.
    """
    vertices = np.asarray(vertices, dtype=np.float64)[:, -2:]
    points = np.asarray(points, dtype=np.float64)
    if shape_type == "ellipse":
        v0, v1, _, v3 = vertices[:4]
        centre = vertices[:4].mean(axis=0)
        a, b = (v1 - v0) / 2.0, (v3 - v0) / 2.0
        if not (a @ a > 0 and b @ b > 0):
            return np.zeros(len(points), dtype=bool)
        d = points - centre
        s, t = d @ a / (a @ a), d @ b / (b @ b)
        return s * s + t * t <= 1.0 + 1e-12
    if shape_type in ("polygon", "rectangle"):
        if len(vertices) < 3:
            return np.zeros(len(points), dtype=bool)
        # a tiny positive radius counts points on the edge (e.g. on a rectangle's border) as inside
        scale = float(np.abs(vertices).max()) or 1.0
        path = Path(vertices)
        return path.contains_points(points, radius=1e-9 * scale) | path.contains_points(points, radius=-1e-9 * scale)
    return np.zeros(len(points), dtype=bool)


def to_world(layer, data) -> np.ndarray:
    """(n, 2) world (row, col) of (n, ndim) data coordinates of ``layer`` (its public transforms)."""
    from ._transforms import data_to_world

    data = np.asarray(data, dtype=np.float64)
    if data.size == 0:
        return np.zeros((0, 2))
    return data_to_world(layer, data.reshape(-1, data.shape[-1]))[:, -2:]


def world_points(layer) -> np.ndarray:
    """The layer's points in world coordinates (last two axes)."""
    return to_world(layer, layer.data)


def shape_vertices_world(shapes_layer, index: int) -> np.ndarray:
    """The vertices of shape ``index`` of ``shapes_layer`` in world (row, col)."""
    return to_world(shapes_layer, shapes_layer.data[index])


def inside_shapes(points: np.ndarray, shapes_layer, indices=None) -> np.ndarray:
    """Boolean mask of world ``points`` (n, 2) inside any area shape of ``shapes_layer``.

    ``indices`` restricts to some shapes (e.g. the selected ones).  Only the points in a shape's
    bounding box go through the polygon test.
    """
    pts = np.asarray(points, dtype=np.float64)
    mask = np.zeros(len(pts), dtype=bool)
    if len(pts) == 0:
        return mask
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    which = range(len(shapes_layer.data)) if indices is None else sorted(indices)
    for i in which:
        kind = shapes_layer.shape_type[i]
        if kind not in AREA_SHAPES:
            continue
        verts = shape_vertices_world(shapes_layer, i)
        vlo, vhi = verts.min(axis=0), verts.max(axis=0)
        if (vhi < lo).any() or (vlo > hi).any():
            continue
        cand = np.flatnonzero(((pts >= vlo) & (pts <= vhi)).all(axis=1))
        if cand.size:
            mask[cand[inside_shape(kind, verts, pts[cand])]] = True
    return mask


def spots_in_shapes(points_layer, shapes_layer, indices=None) -> np.ndarray:
    """Boolean mask of the spots of ``points_layer`` inside any area shape of ``shapes_layer``.

    Both layers are compared in world coordinates, so scaled or translated layers match.
    ``indices`` restricts to some shapes (e.g. the selected ones).
    """
    return inside_shapes(world_points(points_layer), shapes_layer, indices)


def shape_edit_finished(event) -> bool:
    """True for a Shapes ``data`` event that ends an edit (added, changed, removed).

    napari also emits ``adding`` / ``changing`` / ``removing`` while the mouse moves.
    """
    action = getattr(event, "action", "changed")
    return str(getattr(action, "value", action)) in ("added", "changed", "removed")


def area_shape_layers(viewer) -> list:
    from napari.layers import Shapes

    return [lyr for lyr in viewer.layers if isinstance(lyr, Shapes)]
