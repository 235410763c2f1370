"""Cells drawn as their segmentation mask, coloured per cell through a lookup table (no Qt).

A napari ``Labels`` layer could be given one colour per cell id with a
:class:`~napari.utils.colormaps.DirectLabelColormap`, but that does not scale to a Xenium section:
with 500 000 cells the colormap takes 5.7 s to build and a draw 10-13 s here (napari 0.9.1,
software OpenGL).  So the layer shows *colour classes* instead of cell ids: every cell's colour is
quantised to 8 bits per channel, each distinct colour gets a small code (at most a few hundred for a
categorical column or a colormap), and the layer's data is ``lut[mask]`` computed lazily per tile by
dask.  Recolouring means a new ``lut`` and a colormap of a few hundred entries; only the visible
tiles of the visible pyramid level are recomputed.

:class:`CellMask` keeps the raw segmentation (every pyramid level, never loaded whole), maps obs
rows to mask ids and back, and builds the lazy arrays a ``Labels`` layer shows.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["CellMask", "MAX_CODES", "TRANSPARENT"]

#: colour classes a mask can show at once (codes are uint16; 0 is the background)
MAX_CODES = 65_535
TRANSPARENT = np.zeros(4, dtype=np.float32)
#: above this many mask ids per table row a dense id -> row table wastes memory: sorted ids instead
_DENSE_IDS_PER_ROW = 8
_DENSE_MIN = 1 << 22
#: row_at reads the full-resolution mask a window of this many pixels a side at a time
_WINDOW = 1024

_names = itertools.count()


def _as_dask(level):
    import dask.array as da

    if isinstance(level, da.Array):
        return level
    arr = np.asarray(level) if not hasattr(level, "chunks") else level
    return da.from_array(arr, chunks=(2048, 2048) if arr.ndim == 2 else "auto")


class _IdMap:
    """Mask label id -> obs row (or -1), dense when the ids are compact, else by sorted search."""

    def __init__(self, cell_ids: np.ndarray) -> None:
        ids = np.asarray(cell_ids)
        if ids.ndim != 1:
            raise ValueError(f"cell_ids must be one-dimensional, got shape {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            as_int = ids.astype(np.int64)
            if not np.array_equal(as_int, ids):
                raise ValueError("cell_ids must be integer mask label ids")
            ids = as_int
        ids = ids.astype(np.int64)
        if ids.size and ids.min() < 0:
            raise ValueError("mask label ids are non-negative")
        if np.unique(ids).size != ids.size:
            dup = ids[np.flatnonzero(np.diff(np.sort(ids)) == 0)[0]]
            raise ValueError(f"mask label id {int(dup)} belongs to more than one table row")
        self.ids = ids
        top = int(ids.max()) + 1 if ids.size else 1
        self.dense = top <= max(_DENSE_MIN, _DENSE_IDS_PER_ROW * ids.size)
        if self.dense:
            self.size = top
        else:
            self.order = np.argsort(ids, kind="stable")
            self.sorted_ids = ids[self.order]

    def table(self, per_row: np.ndarray, fill=0) -> dict:
        """A lookup from mask id to ``per_row[row]`` (``fill`` for ids not in the table)."""
        per_row = np.asarray(per_row)
        if self.dense:
            lut = np.full(self.size, fill, dtype=per_row.dtype)
            lut[self.ids] = per_row
            return {"dense": lut, "fill": fill}
        return {"sorted": self.sorted_ids, "values": per_row[self.order], "fill": fill}

    def rows(self, values: np.ndarray) -> np.ndarray:
        """The obs row of each mask id in ``values`` (-1 for background and unknown ids)."""
        return _lookup(np.asarray(values), self.table(np.arange(self.ids.size, dtype=np.int64), fill=-1))


def _lookup(block: np.ndarray, table: dict) -> np.ndarray:
    """``table`` applied to every value of ``block`` (ids outside the table get its fill)."""
    block = np.asarray(block)
    fill = table["fill"]
    if "dense" in table:
        lut = table["dense"]
        inside = (block >= 0) & (block < lut.size)
        out = np.full(block.shape, fill, dtype=lut.dtype)
        out[inside] = lut[block[inside]]
        return out
    ids, values = table["sorted"], table["values"]
    out = np.full(block.shape, fill, dtype=values.dtype)
    if ids.size == 0:
        return out
    pos = np.minimum(np.searchsorted(ids, block), ids.size - 1)
    hit = ids[pos] == block
    out[hit] = values[pos[hit]]
    return out


def quantise_colors(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, palette)``: codes (n,) from 1, palette (k, 4) float32 RGBA, one row per distinct colour.

    Colours are rounded to 8 bits per channel first, so a continuous colormap gives at most 256 classes
    per channel combination actually used (a colormap's own 256-entry table in practice).
    """
    rgba = np.asarray(rgba, dtype=np.float64)
    if rgba.ndim != 2 or rgba.shape[1] not in (3, 4):
        raise ValueError(f"per-cell colours must be (n, 4) RGBA, got shape {rgba.shape}")
    if rgba.shape[1] == 3:
        rgba = np.column_stack([rgba, np.ones(len(rgba))])
    q = np.clip(np.rint(np.nan_to_num(rgba, nan=0.0) * 255), 0, 255).astype(np.uint32)
    packed = (q[:, 0] << 24) | (q[:, 1] << 16) | (q[:, 2] << 8) | q[:, 3]
    uniq, inverse = np.unique(packed, return_inverse=True)
    if uniq.size > MAX_CODES:
        raise ValueError(f"{uniq.size} distinct colours; a mask shows at most {MAX_CODES}")
    palette = np.column_stack([(uniq >> s) & 0xFF for s in (24, 16, 8, 0)]).astype(np.float32) / 255.0
    return (inverse.ravel() + 1).astype(np.uint16), palette


class CellMask:
    """The segmentation of a table's cells: raw mask levels and the lazy, recolourable arrays shown.

    Parameters
    ----------
    levels
        The raw segmentation, level 0 (full resolution) first: 2-D integer arrays (dask, zarr or numpy).
        They are wrapped lazily and never loaded whole.
    cell_ids
        ``(n_obs,)`` the mask label id of each row of the table (its instance key).
    background
        The label id of "no cell" (0 in SpatialData and Xenium masks).
    """

    def __init__(self, levels, cell_ids, *, background: int = 0) -> None:
        if not isinstance(levels, (list, tuple)):
            levels = [levels]
        if not levels:
            raise ValueError("a mask needs at least one level")
        self.levels = [_as_dask(lv) for lv in levels]
        for lv in self.levels:
            if lv.ndim != 2:
                raise ValueError(f"mask levels must be 2-D (y, x), got shape {lv.shape}")
            if not np.issubdtype(lv.dtype, np.integer):
                raise ValueError(f"mask levels must hold integer label ids, got {lv.dtype}")
        self.ids = _IdMap(cell_ids)
        self.cell_ids = self.ids.ids
        self.n_obs = int(self.cell_ids.size)
        self.background = int(background)
        self.codes = np.ones(self.n_obs, dtype=np.uint16)
        self.palette = np.array([[0.6, 0.6, 0.6, 1.0]], dtype=np.float32)
        self.selected = np.zeros(self.n_obs, dtype=bool)
        # the level-0 window last read by row_at: hovering reads pixel after pixel of the same window,
        # and reading from a Xenium store costs ~60 ms (one (key, window) tuple: swapped whole)
        self._block: tuple | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Level 0's (rows, columns)."""
        return tuple(int(s) for s in self.levels[0].shape)

    # -- colours -------------------------------------------------------------------------------
    def set_colors(self, rgba):
        """Colour every row's cell by ``rgba`` (n_obs, 4); returns the colormap to give the layer.

        Assign the returned colormap *and* :meth:`display_levels` to the layer (the codes change).
        """
        rgba = np.asarray(rgba)
        if len(rgba) != self.n_obs:
            raise ValueError(f"{len(rgba)} colours for a mask of {self.n_obs} cells")
        self.codes, self.palette = quantise_colors(rgba)
        return self.colormap()

    def colormap(self):
        """A :class:`~napari.utils.colormaps.DirectLabelColormap` of the current colour classes."""
        from napari.utils.colormaps import DirectLabelColormap

        colors = {None: TRANSPARENT, 0: TRANSPARENT}
        colors.update({i + 1: c for i, c in enumerate(self.palette)})
        return DirectLabelColormap(color_dict=colors)

    def display_levels(self) -> list:
        """Lazy uint16 arrays (one per level) of each pixel's colour class (0: background / no row)."""
        table = self.ids.table(self.codes, fill=np.uint16(0))
        return self._mapped(table, np.uint16, "annot-codes")

    # -- selection ------------------------------------------------------------------------------
    def set_selected(self, rows) -> None:
        """Highlight these obs rows (indices or a boolean mask) in :meth:`selection_levels`."""
        rows = np.asarray(rows)
        sel = np.zeros(self.n_obs, dtype=bool)
        if rows.dtype == bool:
            if rows.size != self.n_obs:
                raise ValueError(f"a boolean selection of {rows.size} for {self.n_obs} cells")
            sel[:] = rows
        elif rows.size:
            sel[rows.astype(np.int64)] = True
        self.selected = sel

    def selection_levels(self) -> list:
        """Lazy uint8 arrays: 1 inside the selected cells, 0 elsewhere."""
        table = self.ids.table(self.selected.astype(np.uint8), fill=np.uint8(0))
        return self._mapped(table, np.uint8, "annot-selected")

    # -- lookups ------------------------------------------------------------------------------
    def row_at(self, index) -> int | None:
        """The obs row of the cell at integer ``(row, col)`` of level 0, or None (background, outside)."""
        r, c = (int(np.floor(v)) for v in np.asarray(index, dtype=float)[-2:])
        h, w = self.shape
        if not (0 <= r < h and 0 <= c < w):
            return None
        value = int(self._level0_value(r, c))
        if value == self.background:
            return None
        row = int(self.ids.rows(np.array([value]))[0])
        return row if row >= 0 else None

    def _level0_value(self, r: int, c: int):
        """The level-0 value at ``(r, c)``, read through the cached window that holds it.

        Windows are ``_WINDOW`` pixels a side on a fixed grid: one stays in memory (4 MiB of uint32),
        however large the store's chunks (a Xenium mask's are 4096 px: 64 MiB).
        """
        i, j = r // _WINDOW, c // _WINDOW
        cached = self._block
        if cached is None or cached[0] != (i, j):
            window = self.levels[0][i * _WINDOW:(i + 1) * _WINDOW, j * _WINDOW:(j + 1) * _WINDOW]
            cached = ((i, j), np.asarray(window.compute() if hasattr(window, "compute") else window))
            self._block = cached
        return cached[1][r - i * _WINDOW, c - j * _WINDOW]

    def centroids(self) -> np.ndarray:
        """(n_obs, 2) centre of mass (row, col) of every row's cell in level-0 pixels (NaN if absent).

        One pass over level 0 block by block (``core._sdata_table.label_means``), never the whole mask.
        """
        from ..core._sdata_table import label_means

        ids, _, mean_col, mean_row = label_means(self.levels[0])
        rows = self.ids.rows(ids)
        keep = (rows >= 0) & (ids != self.background)
        out = np.full((self.n_obs, 2), np.nan)
        out[rows[keep]] = np.column_stack([mean_row[keep], mean_col[keep]])
        return out

    def rows_of_ids(self, values) -> np.ndarray:
        """Obs rows of mask ids (-1 where an id has no row)."""
        return self.ids.rows(np.asarray(values))

    def _mapped(self, table: dict, dtype, prefix: str) -> list:
        # a fresh name per call: napari's dask cache must never hand back tiles of an older colouring
        n = next(_names)
        return [lv.map_blocks(_lookup, table=table, dtype=dtype, name=f"{prefix}-{n}-{i}")
                for i, lv in enumerate(self.levels)]
