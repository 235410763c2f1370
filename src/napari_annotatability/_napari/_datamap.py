"""Data map dock: confidence x variability of every spot, brushed both ways with the tissue.

* A lasso (or box) drawn in the map selects those cells on the tissue (the selected points of a
  spots layer, the outlined cells of a mask).
* Selecting cells on the tissue -- points in select mode, a click on a mask, or a region drawn in
  any Shapes layer -- highlights them in the map.

Both go through the viewer's cell model (``_model``): the map shows the obs rows of the picked
layer of cells, and its selection is always in obs rows.

Up to ``RASTER_MIN`` spots the map is a scatter, one dot per spot.  Above, a scatter of 10^5 -
10^6 dots takes seconds to draw (and to redraw at every selection) and shows mostly overplotting,
so the map becomes a density raster: a 2-D histogram of (variability, confidence) in
``RASTER_BINS`` bins, each bin coloured by the category mix of its spots and opaque in
proportion to the log of their number.  A selection fades that raster and draws a second one of
the selected spots on top (outlined one by one as well when there are at most
``OVERLAY_POINTS_MAX``).  Brushing is unchanged: a lasso or box selects exactly the spots whose
(variability, confidence) lie inside it, tested on the values themselves, not on the bins.

A selection is drawn by blitting: the map (faded when anything is selected) is drawn once and
cached; the selected spots and their outlines are animated artists drawn over that cache.  So
stepping from one selected spot to the next (the curation dock's review queue) redraws two small
artists, not the axes, their ticks and 10^5 dots (``benchmarks/bench_curation.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox
from qtpy.QtWidgets import QFormLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..core import keys
from ._dock import DockLink, LayerPicker, on_click
from ._layout import compact, place_when_docked
from ._spatial import category_colors

if TYPE_CHECKING:
    import napari

__all__ = ["DataMapWidget", "RASTER_MIN", "RASTER_BINS", "OVERLAY_POINTS_MAX", "select_spots"]

#: above this many spots the map is a density raster instead of a scatter.  Measured with
#: benchmarks/bench_datamap.py (2 busy cores, Agg): the scatter opens in ~0.5 s at 10^4 spots,
#: ~1 s at 6 x 10^4, ~2 s at 10^5 and ~13 s at 10^6; the raster in ~0.5 s at any size
#: (a 10^6-spot map: ~0.1 s to bin, ~0.2 s to draw)
RASTER_MIN = 50_000
#: raster bins along (variability, confidence): about one bin per pixel of the dock's axes
RASTER_BINS = (240, 240)
#: in raster mode, selections up to this many spots are also outlined one by one
OVERLAY_POINTS_MAX = 5_000
#: colour of spots without a category (no categories yet)
_PLAIN = (0.35, 0.45, 0.6, 1.0)
_GREY = (0.6, 0.6, 0.6, 1.0)


def select_spots(cell, rows) -> None:
    """Select obs ``rows`` on a layer of cells: the napari side of a lasso (benchmarks time it)."""
    cell.select(rows)


class DataMapWidget(QWidget):
    """Confidence (y) against variability (x), coloured by category, as in the paper's figures."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.viewer = napari_viewer
        self.layer = None
        self.selected = np.zeros(0, dtype=np.int64)
        self._xy = np.zeros((0, 2))
        self._signature = None
        self._selector = None

        self._rows = np.zeros(0, dtype=np.int64)  # the obs rows the map shows, in its order
        self.link = DockLink(self, napari_viewer)
        self.model = self.link.model
        self.picker = LayerPicker(self.link, "cells", prefer=lambda lyr: keys.VARIABILITY in lyr.metadata["adata"].obs)
        self.layer_combo = self.picker.combo
        self.layer_combo.changed.connect(lambda _v: self.redraw())
        self.mode = ComboBox(label="brush", choices=["lasso", "box"], value="lasso")
        self.mode.changed.connect(lambda _v: self._make_selector())
        self.figure = Figure(figsize=(3.6, 3.4), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(130)
        self.ax = self.figure.add_subplot(111)
        self._base = None  # the scatter (PathCollection) or the density raster (AxesImage)
        self._overlay = None  # outlines of the selected spots (a scatter; animated)
        self._sel_image = None  # raster mode: density of the selected spots (animated)
        self._sel_points = None  # scatter mode: the selected spots in full colour (animated)
        self._faded = False  # whether the base is faded (anything selected)
        self._background = None  # the axes as last fully drawn, without the animated artists
        self._background_faded = None  # the base's fading in that cache
        self.raster = False  # whether the map is drawn as a density raster
        self._extent = (0.0, 0.5, -0.02, 1.02)
        self._bins = np.zeros(0, dtype=np.int64)
        self._cat_codes = np.zeros(0, dtype=np.int64)
        self._table = np.array([_PLAIN])
        self._base_rgba = np.zeros((RASTER_BINS[1], RASTER_BINS[0], 4))
        self.info = QLabel("Train first (Annotatability widget): the map needs confidence and variability.")
        self.info.setWordWrap(True)
        self.clear_button = QPushButton("Clear selection")
        on_click(self.clear_button, self.clear_selection)

        top = QFormLayout()
        top.addRow("cells", self.layer_combo.native)
        top.addRow("brush", self.mode.native)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.info)
        layout.addWidget(self.clear_button)

        self.canvas.mpl_connect("draw_event", self._on_draw)
        self.link.connect(self.model.layers_changed, self._on_layers_changed)
        self.link.connect(self.model.selection_changed, self._on_selection)
        self.link.connect(self.model.results_changed, self._on_results)
        self._on_layers_changed()
        compact(self)
        place_when_docked(self, napari_viewer)  # the Plugins menu too: a tab of the Inspect group

    # -- layers ----------------------------------------------------------------------------
    def _on_layers_changed(self, *_a) -> None:
        self.picker.refresh()
        if self.layer is not self.layer_combo.value:
            self.redraw()

    @staticmethod
    def _scores(cell):
        obs = cell.adata.obs
        if keys.CONFIDENCE not in obs or keys.VARIABILITY not in obs:
            return None
        return cell.values(keys.VARIABILITY).to_numpy(dtype=float), cell.values(keys.CONFIDENCE).to_numpy(dtype=float)

    # -- drawing ---------------------------------------------------------------------------
    def redraw(self) -> None:
        """Draw the map of the chosen layer from its AnnData (the finished results)."""
        layer = self.layer_combo.value
        cell = self.model.get(layer)
        self.layer = layer
        self.ax.clear()
        self._base = self._overlay = self._sel_image = self._sel_points = None
        self._faded = False
        self._background = None
        self.raster = False
        self.selected = np.zeros(0, dtype=np.int64)
        scores = None if cell is None else self._scores(cell)
        if scores is None:
            self._xy = np.zeros((0, 2))
            self._rows = np.zeros(0, dtype=np.int64)
            self._signature = None
            self.ax.text(0.5, 0.5, "not trained yet", ha="center", va="center", transform=self.ax.transAxes)
            self.ax.set_axis_off()
            self.info.setText("Train first (Annotatability widget): the map needs confidence and variability.")
            self._make_selector()
            self.canvas.draw_idle()
            return
        adata = cell.adata
        var, conf = scores
        self._xy = np.column_stack([var, conf])
        self._rows = cell.rows
        self._signature = self._sig(layer)
        n = len(var)
        self._cat_codes, self._table = self._categories(adata, n)
        if len(self._cat_codes) != n:
            self._cat_codes = self._cat_codes[self._rows]
        finite = np.isfinite(var)
        xmax = max(0.05, float(var[finite].max()) * 1.08) if finite.any() else 0.5
        self._extent = (0.0, xmax, -0.02, 1.02)
        self.raster = n > RASTER_MIN
        if self.raster:
            self._bins = self._bin_index(self._xy)
            image = dict(extent=self._extent, origin="lower", aspect="auto", interpolation="nearest")
            self._base_rgba = self._density(None)
            self._base = self.ax.imshow(self._base_rgba, zorder=1, **image)
            self._sel_image = self.ax.imshow(np.zeros((RASTER_BINS[1], RASTER_BINS[0], 4)), zorder=2,
                                             visible=False, animated=True, **image)
            size = 3.0
        else:
            self._colors = self._table[self._cat_codes]
            size = float(np.clip(3000.0 / max(n, 1), 0.5, 12.0))
            self._base = self.ax.scatter(var, conf, s=size, c=self._colors, linewidths=0, rasterized=True)
            self._sel_points = self.ax.scatter(np.zeros(0), np.zeros(0), s=size, linewidths=0, zorder=2,
                                               animated=True)
        self._overlay = self.ax.scatter(np.zeros(0), np.zeros(0), s=max(size * 2, 6.0), facecolors="none",
                                        edgecolors="black", linewidths=0.6, zorder=3, animated=True)
        th = adata.uns.get(keys.UNS, {}).get("thresholds", {}) if isinstance(adata.uns.get(keys.UNS), dict) else {}
        if "confidence" in th and "variability" in th and th.get("rule", "paper") == "paper":
            kw = dict(color="#d62728", lw=0.8, ls="--")  # the paper's erroneous box
            self.ax.plot([0, th["variability"]], [th["confidence"]] * 2, **kw)
            self.ax.plot([th["variability"]] * 2, [0, th["confidence"]], **kw)
        elif th.get("rule") == "calibrated" and np.isfinite(float(th.get("ambiguous_variability", np.inf))):
            # the calibrated rule's line in this plane: from here on the spots are ambiguous
            self.ax.axvline(th["ambiguous_variability"], color="#ff9f1c", lw=0.8, ls="--")
        self.ax.set_xlim(*self._extent[:2])
        self.ax.set_ylim(*self._extent[2:])
        self.ax.set_xlabel("variability")
        self.ax.set_ylabel("confidence")
        self.ax.set_title(layer.name, fontsize=9)
        self._make_selector()
        self.info.setText(self._idle_text())
        self.canvas.draw_idle()
        selection = cell.selection()
        if selection.size:
            self.highlight(selection)

    def _idle_text(self) -> str:
        shown = " (density: the more opaque a bin, the more cells; log scale)" if self.raster else ""
        return f"{len(self._xy)} cells{shown}. Drag a {self.mode.value} in the map to select cells on the tissue."

    @staticmethod
    def _categories(adata, n):
        """Category code of every spot (the last code: none / unmapped) and the code -> RGBA table."""
        import pandas as pd
        from matplotlib.colors import to_rgba

        if keys.CATEGORY not in adata.obs:
            return np.zeros(n, dtype=np.int64), np.array([_PLAIN])
        col = adata.obs[keys.CATEGORY]
        mapping = category_colors(adata, keys.CATEGORY)
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes, names = col.cat.codes.to_numpy().astype(np.int64), [str(c) for c in col.cat.categories]
        else:
            codes, uniques = pd.factorize(col.astype(str))
            codes, names = codes.astype(np.int64), [str(c) for c in uniques]
        table = np.array([to_rgba(mapping[c]) if c in mapping else _GREY for c in names] + [_GREY])
        return np.where(codes < 0, len(names), codes), table

    def _bin_index(self, xy: np.ndarray) -> np.ndarray:
        """Flat raster bin of each (variability, confidence); -1 where either is not finite."""
        nx, ny = RASTER_BINS
        x0, x1, y0, y1 = self._extent
        with np.errstate(invalid="ignore"):
            ix = np.clip(np.floor((xy[:, 0] - x0) * (nx / (x1 - x0))), 0, nx - 1)
            iy = np.clip(np.floor((xy[:, 1] - y0) * (ny / (y1 - y0))), 0, ny - 1)
        flat = iy * nx + ix
        return np.where(np.isfinite(flat), flat, -1).astype(np.int64)

    def _density(self, idx) -> np.ndarray:
        """(ny, nx, 4) image of the spots ``idx`` (None: all): category mix, log-density opacity.

        The same as ``numpy.histogram2d`` per category (``bincount`` of flat bin indices: faster).
        """
        nx, ny = RASTER_BINS
        nb = nx * ny
        bins, cats = (self._bins, self._cat_codes) if idx is None else (self._bins[idx], self._cat_codes[idx])
        ok = bins >= 0
        k = len(self._table)
        counts = np.bincount(cats[ok] * nb + bins[ok], minlength=k * nb).reshape(k, nb).astype(np.float64)
        total = counts.sum(0)
        rgba = np.zeros((nb, 4))
        filled = total > 0
        if filled.any():
            rgba[filled, :3] = (counts[:, filled].T @ self._table[:, :3]) / total[filled, None]
            top = total.max()
            level = np.log(total[filled]) / np.log(top) if top > 1 else np.ones(filled.sum())
            rgba[filled, 3] = 0.3 + 0.7 * level  # a lone spot still shows
        return rgba.reshape(ny, nx, 4)

    @staticmethod
    def _sig(layer):
        obs = layer.metadata["adata"].obs
        parts = []
        for k in (keys.CONFIDENCE, keys.VARIABILITY, keys.CATEGORY):
            if k in obs:
                col = obs[k]
                parts.append(col.cat.codes.to_numpy().tobytes() if hasattr(col, "cat") else col.to_numpy().tobytes())
        return hash(tuple(parts))

    def _on_results(self, cell) -> None:
        if cell.layer is not self.layer_combo.value or cell.training:
            return
        if self._sig(cell.layer) != self._signature:
            self.redraw()

    def highlight(self, indices) -> None:
        """Outline these cells (obs rows) in the map and fade the others (none: show all plainly)."""
        arr = indices if isinstance(indices, np.ndarray) else np.fromiter(indices, dtype=np.int64)
        rows = np.sort(arr.astype(np.int64))  # sort + neighbour test: np.unique hashes, 50x slower here
        if rows.size:
            rows = rows[np.concatenate([[True], rows[1:] != rows[:-1]])]
        cell = self.model.get(self.layer)
        idx = cell.positions(rows) if cell is not None and len(self._xy) else np.zeros(0, dtype=np.int64)
        keep = (idx >= 0) & (idx < len(self._xy))
        idx, self.selected = idx[keep], rows[keep]
        if idx.size and (np.diff(idx) < 0).any():
            idx = np.sort(idx)
        if self._base is None:
            return
        outlined = idx if (not self.raster or idx.size <= OVERLAY_POINTS_MAX) else idx[:0]
        faded = bool(idx.size)
        if faded != self._faded:  # the base itself changes: a full draw
            self._faded = faded
            if self.raster:
                rgba = self._base_rgba.copy()
                if faded:
                    rgba[..., 3] *= 0.25
                self._base.set_data(rgba)
            else:
                colors = self._colors.copy()
                if faded:
                    colors[:, 3] = 0.18
                self._base.set_facecolors(colors)
        if self.raster:
            if idx.size:
                self._sel_image.set_data(self._density(idx))
            self._sel_image.set_visible(bool(idx.size))
        else:
            self._sel_points.set_offsets(self._xy[idx] if idx.size else np.zeros((0, 2)))
            self._sel_points.set_facecolors(self._colors[idx] if idx.size else np.zeros((0, 4)))
        self._overlay.set_offsets(self._xy[outlined] if outlined.size else np.zeros((0, 2)))
        self.info.setText(f"{idx.size} of {len(self._xy)} cells selected." if idx.size else self._idle_text())
        if not self._blit():
            self.canvas.draw_idle()

    def _draw_selection(self) -> None:
        """Draw the animated artists (the selected spots, their outlines) onto the canvas buffer."""
        for artist in (self._sel_image, self._sel_points, self._overlay):
            if artist is not None and artist.get_visible():
                self.ax.draw_artist(artist)

    def _on_draw(self, _event) -> None:
        """After a full draw: cache the axes without the selection, then draw the selection on them."""
        self._background = self.canvas.copy_from_bbox(self.ax.bbox)
        self._background_faded = self._faded
        self._draw_selection()

    def _blit(self) -> bool:
        """Redraw only the selection over the cached map; False when the cache does not fit."""
        if self._background is None or self._background_faded != self._faded or self._base is None:
            return False
        self.canvas.restore_region(self._background)
        self._draw_selection()
        self.canvas.update()  # paint the buffer at the next turn (canvas.blit repaints at once)
        return True

    # -- map -> tissue ---------------------------------------------------------------------
    def _make_selector(self) -> None:
        from matplotlib.widgets import LassoSelector, RectangleSelector

        if self._selector is not None:
            self._selector.disconnect_events()
            self._selector = None
        if self._base is None:
            return
        if self.mode.value == "box":
            self._selector = RectangleSelector(self.ax, self._on_box, useblit=True, interactive=False,
                                               props=dict(edgecolor="black", fill=False))
        else:
            self._selector = LassoSelector(self.ax, self.select_in_map, useblit=True,
                                           props=dict(color="black", linewidth=1))

    def _on_box(self, press, release) -> None:
        x0, x1 = sorted((press.xdata, release.xdata))
        y0, y1 = sorted((press.ydata, release.ydata))
        self.select_in_map([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])

    def select_in_map(self, vertices) -> np.ndarray:
        """Select the cells whose (variability, confidence) lie inside the polygon ``vertices``.

        Returns their obs rows; they are selected on the tissue and highlighted here.
        """
        from matplotlib.path import Path

        cell = self.model.get(self.layer)
        if cell is None or len(self._xy) == 0 or len(vertices) < 3:
            return np.zeros(0, dtype=np.int64)
        verts = np.asarray(vertices, dtype=float)
        lo, hi = verts.min(axis=0), verts.max(axis=0)
        xy = self._xy
        # only the cells in the lasso's bounding box go through the (vertices x cells) polygon test
        box = np.flatnonzero((xy[:, 0] >= lo[0]) & (xy[:, 0] <= hi[0]) & (xy[:, 1] >= lo[1]) & (xy[:, 1] <= hi[1]))
        inside = box[Path(verts).contains_points(xy[box])] if box.size else box
        rows = self._rows[inside]
        select_spots(cell, rows)  # selection_changed highlights them here
        if not np.array_equal(self.selected, np.sort(rows)):
            self.highlight(rows)
        return rows

    def clear_selection(self) -> None:
        cell = self.model.get(self.layer)
        if cell is not None:
            cell.select([])  # the model's selection_changed clears the highlight here
        if self.selected.size or self._faded:
            self.highlight([])

    # -- tissue -> map ---------------------------------------------------------------------
    def _on_selection(self, cell, rows) -> None:
        if cell.layer is self.layer:
            self.highlight(rows)
