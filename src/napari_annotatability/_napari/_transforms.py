"""Many positions between a layer's data and world coordinates, through napari's public API.

``layer.data_to_world`` converts one position at a time.  The same transform, from the layer's
public ``scale``, ``translate``, ``rotate``, ``shear`` and ``affine``, applied to an (n, ndim)
array at once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["data_to_world", "world_to_data"]


def _transform(layer):
    from napari.utils.transforms import CompositeAffine

    physical = CompositeAffine(scale=layer.scale, translate=layer.translate, rotate=layer.rotate,
                               shear=layer.shear, ndim=layer.ndim)
    return layer.affine.compose(physical)


def data_to_world(layer, coords) -> np.ndarray:
    """(n, ndim) world coordinates of (n, ndim) data coordinates of ``layer``."""
    coords = np.atleast_2d(np.asarray(coords, dtype=np.float64))
    if len(coords) == 0:
        return coords.reshape(0, layer.ndim)
    return np.asarray(_transform(layer)(coords), dtype=np.float64)


def world_to_data(layer, coords) -> np.ndarray:
    """(n, ndim) data coordinates of (n, ndim) world coordinates (the inverse of :func:`data_to_world`)."""
    coords = np.atleast_2d(np.asarray(coords, dtype=np.float64))
    if len(coords) == 0:
        return coords.reshape(0, layer.ndim)
    return np.asarray(_transform(layer).inverse(coords), dtype=np.float64)
