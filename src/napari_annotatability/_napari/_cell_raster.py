"""Cell polygons and square bins -> an integer label mask on a regular pixel grid (no Qt, no napari).

Polygons (MERSCOPE, CosMx, bento cell boundaries) are filled with a vectorised even-odd scanline:
every edge of every ring is cut by the pixel rows it spans, the crossings are sorted per (cell, row)
and paired into spans, and the spans are written in one flat assignment.  A pixel belongs to a cell
when its centre lies inside the polygon (holes and multi-polygons included).  Square bins (Visium HD)
need no polygons: each bin's grid index gives its pixel directly.

Both return a :class:`Raster`: the mask (label ``k + 1`` is the ``k``-th geometry, 0 is background)
and the affine that maps a mask index (row, col) to world (y, x), in napari's convention (a pixel's
centre sits at its integer index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Raster", "rasterize_polygons", "grid_of_bins", "pixel_size_for", "MAX_SIDE", "MIN_CELL_PX"]

#: the longest side of a rasterised mask, in pixels
MAX_SIDE = 8000
#: a median cell is drawn at least this many pixels across (unless MAX_SIDE forbids it)
MIN_CELL_PX = 8


@dataclass
class Raster:
    """An integer mask and the (3, 3) affine from its (row, col) index to world (y, x)."""

    mask: np.ndarray
    affine: np.ndarray

    def pyramid(self, min_side: int = 1024) -> list[np.ndarray]:
        """The mask and strided (nearest-neighbour) views of it, halving until ``min_side``."""
        levels = [self.mask]
        while max(levels[-1].shape) > min_side:
            levels.append(levels[-1][::2, ::2])
        return levels


def pixel_size_for(geoms, extent: tuple[float, float]) -> float:
    """A pixel size (world units) that draws the median cell >= MIN_CELL_PX across, sides <= MAX_SIDE."""
    import shapely

    areas = shapely.area(np.asarray(geoms))
    areas = areas[areas > 0]
    across = float(np.sqrt(np.median(areas))) if areas.size else 1.0
    longest = max(float(extent[0]), float(extent[1]), 1e-9)
    return max(across / MIN_CELL_PX, longest / MAX_SIDE)


def rasterize_polygons(geoms, pixel_size: float | None = None) -> Raster:
    """Fill polygons (world x, y) into a label mask: pixel value ``k + 1`` = ``geoms[k]``.

    Parameters
    ----------
    geoms
        A sequence (GeoSeries, array) of shapely Polygons / MultiPolygons in world (x, y).
    pixel_size
        World units per pixel; by default :func:`pixel_size_for`.

    Where polygons overlap, the later one wins.  Empty geometries draw nothing.
    """
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    if geoms.size == 0:
        raise ValueError("no polygons to rasterise")
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    if pixel_size is None:
        pixel_size = pixel_size_for(geoms, (y1 - y0, x1 - x0))
    px = float(pixel_size)
    h = int(np.ceil((y1 - y0) / px)) + 1
    w = int(np.ceil((x1 - x0) / px)) + 1
    dtype = np.int32 if geoms.size < 2**31 - 1 else np.int64
    mask = np.zeros((h, w), dtype=dtype)

    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    cell = part_of[ring_of[coord_ring]]  # geometry index of every vertex
    # edges join consecutive vertices of the same (closed) ring
    same = coord_ring[:-1] == coord_ring[1:]
    a, b = coords[:-1][same], coords[1:][same]
    cell = cell[:-1][same]
    # in pixel units, pixel centres at integers
    ax, ay = (a[:, 0] - x0) / px - 0.5, (a[:, 1] - y0) / px - 0.5
    bx, by = (b[:, 0] - x0) / px - 0.5, (b[:, 1] - y0) / px - 0.5
    lo, hi = np.minimum(ay, by), np.maximum(ay, by)
    first = np.ceil(lo).astype(np.int64)  # rows r with lo <= r < hi (half-open: no double vertex hits)
    count = np.maximum(np.ceil(hi).astype(np.int64) - first, 0)
    keep = count > 0
    ax, ay, bx, by, first, count, cell = (v[keep] for v in (ax, ay, bx, by, first, count, cell))
    edge = np.repeat(np.arange(count.size), count)
    row = first[edge] + (np.arange(edge.size) - np.repeat(np.cumsum(count) - count, count))
    t = (row - ay[edge]) / (by[edge] - ay[edge])
    xc = ax[edge] + t * (bx[edge] - ax[edge])
    c = cell[edge]
    order = np.lexsort((xc, row, c))
    c, row, xc = c[order], row[order], xc[order]
    # crossings of one (cell, row) come in pairs: [start, end) spans of the even-odd rule
    start = np.flatnonzero(np.r_[True, (c[1:] != c[:-1]) | (row[1:] != row[:-1])])
    pos = np.arange(c.size) - np.repeat(start, np.diff(np.r_[start, c.size]))
    opening = np.flatnonzero(pos % 2 == 0)
    opening = opening[opening + 1 < c.size]
    closing = opening + 1
    ok = (c[closing] == c[opening]) & (row[closing] == row[opening])
    opening, closing = opening[ok], closing[ok]
    col0 = np.clip(np.ceil(xc[opening]).astype(np.int64), 0, w)
    col1 = np.clip(np.ceil(xc[closing]).astype(np.int64), 0, w)  # pixel centres in [x_open, x_close)
    rr = np.clip(row[opening], 0, h - 1)
    span = np.maximum(col1 - col0, 0)
    fill = np.repeat(np.arange(span.size), span)
    offs = np.arange(fill.size) - np.repeat(np.cumsum(span) - span, span)
    # later geometries win: write spans in geometry order (they are sorted by cell already)
    mask.ravel()[rr[fill] * w + col0[fill] + offs] = (c[opening][fill] + 1).astype(dtype)
    affine = np.array([[px, 0.0, y0 + 0.5 * px], [0.0, px, x0 + 0.5 * px], [0.0, 0.0, 1.0]])
    return Raster(mask, affine)


def grid_of_bins(grid_rc: np.ndarray, world_yx: np.ndarray, *, tolerance: float = 0.25) -> Raster | None:
    """A label grid of square bins: pixel (i, j) of bin ``k`` = its grid index, value ``k + 1``.

    Parameters
    ----------
    grid_rc
        ``(n, 2)`` integer grid (row, col) of every bin (Visium HD ``array_row`` / ``array_col``).
    world_yx
        ``(n, 2)`` world (y, x) centre of every bin.
    tolerance
        Largest misfit, in bins, of the affine fitted from grid index to world; above it (or when
        two bins share a grid cell) None is returned and the caller should rasterise polygons.

    The affine (with any rotation of the bin grid in the world) is the least-squares fit of the
    bin centres, so the grid lines up with the image to a fraction of a bin.
    """
    grid_rc = np.asarray(grid_rc)
    world_yx = np.asarray(world_yx, dtype=np.float64)
    if len(grid_rc) < 3:
        return None
    g = grid_rc.astype(np.int64)
    origin = g.min(axis=0)
    g = g - origin
    shape = tuple(int(s) for s in g.max(axis=0) + 1)
    if shape[0] * shape[1] > 16 * MAX_SIDE * MAX_SIDE:
        return None
    design = np.column_stack([g.astype(np.float64), np.ones(len(g))])
    coef, *_ = np.linalg.lstsq(design, world_yx, rcond=None)  # (3, 2): world = [i, j, 1] @ coef
    misfit = np.abs(design @ coef - world_yx)
    step = float(np.sqrt(abs(np.linalg.det(coef[:2].T))))  # world size of one bin
    if not step > 0 or misfit.max() > tolerance * step:
        return None
    mask = np.zeros(shape, dtype=np.int32)
    flat = g[:, 0] * shape[1] + g[:, 1]
    if np.unique(flat).size != flat.size:
        return None
    mask.ravel()[flat] = np.arange(1, len(g) + 1, dtype=np.int32)
    affine = np.eye(3)
    affine[:2, :2] = coef[:2].T
    affine[:2, 2] = coef[2]
    return Raster(mask, affine)


def bins_from_centres(world_yx: np.ndarray, side: float) -> np.ndarray:
    """Grid (row, col) indices of axis-aligned square bins of ``side`` from their centres."""
    world_yx = np.asarray(world_yx, dtype=np.float64)
    return np.rint((world_yx - world_yx.min(axis=0)) / side).astype(np.int64)
