"""A small layer of cells drawn as a segmentation mask, built per the layers contract (tests only).

The synthetic tissue's spots become square cells of a label mask (two pyramid levels) at
``PIXEL`` world units a pixel, shifted by ``OFFSET``; label ids are not the obs positions
(``id = 7 * row + 11``), as in a real segmentation.  Each cell's polygon is kept as its boundary.
"""

from __future__ import annotations

import numpy as np

from napari_annotatability import core

#: world units per mask pixel, and the world position of mask pixel (0, 0)
PIXEL = 20.0
OFFSET = np.array([35.0, -15.0])
#: half the side of a cell's square, in mask pixels
HALF = 3


def cell_ids(n: int) -> np.ndarray:
    return 7 * np.arange(n) + 11


def make_cells(n_spots: int = 300, seed: int = 2, scored: bool = False):
    """``(adata, levels, ids, centroids, polygons)``: obs rows, the mask pyramid, (n, 2) world (row, col)."""
    import geopandas as gpd
    from shapely.geometry import box

    adata = core.make_synthetic_tissue(n_spots=n_spots, seed=seed)
    if scored:
        core.score(adata, "label", epochs=5, seed=0)
    yx = adata.obsm["spatial"][:, ::-1]
    index = np.round((yx - OFFSET) / PIXEL).astype(int) + HALF + 1
    shape = tuple(index.max(axis=0) + HALF + 2)
    mask = np.zeros(shape, dtype=np.int32)
    ids = cell_ids(adata.n_obs)
    for (r, c), i in zip(index, ids):
        mask[r - HALF:r + HALF + 1, c - HALF:c + HALF + 1] = i
    centroids = index * PIXEL + OFFSET  # world (row, col) of each cell's central pixel
    half = (HALF + 0.5) * PIXEL
    polygons = gpd.GeoSeries([box(x - half, y - half, x + half, y + half) for y, x in centroids])
    adata.obsm["spatial"] = centroids[:, ::-1].copy()  # (x, y) in world units, as table_from_sdata writes
    return adata, [mask, mask[::2, ::2]], ids, centroids, polygons


def add_cells_layer(viewer, n_spots: int = 300, seed: int = 2, scored: bool = False, name: str = "cells"):
    """Add the Labels layer of cells to ``viewer``; returns it (its AnnData in ``metadata['adata']``)."""
    from napari_annotatability._napari._mask import CellMask

    adata, levels, ids, centroids, polygons = make_cells(n_spots, seed, scored)
    mask = CellMask(levels, ids)
    meta = {"adata": adata, "mask": mask, "rows": None, "centroids": centroids, "units": "pixel",
            "color_by": None, "cell_polygons": polygons, "source_path": None}
    return viewer.add_labels(mask.display_levels(), multiscale=True, scale=(PIXEL, PIXEL), translate=OFFSET,
                             name=name, metadata=meta)
