"""Data map dock: confidence x variability of every spot, brushed both ways with the tissue.

* A lasso (or box) drawn in the map selects those spots on the tissue (``selected_data`` of
  the spots layer).
* Selecting spots on the tissue -- points in select mode, or a region drawn in any Shapes
  layer -- highlights them in the map.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..core import keys
from ._selection import select_spots, shape_edit_finished, spot_layers, spots_in_shapes
from ._spatial import category_colors, rgba_from

if TYPE_CHECKING:
    import napari

__all__ = ["DataMapWidget"]

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
        self._syncing = False  # our own selection change must not echo back into the map

        self.layer_combo = ComboBox(label="spots", choices=self._choices, nullable=True)
        self.layer_combo.changed.connect(lambda _v: self.redraw())
        self.mode = ComboBox(label="brush", choices=["lasso", "box"], value="lasso")
        self.mode.changed.connect(lambda _v: self._make_selector())
        self.figure = Figure(figsize=(3.6, 3.4), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(300)
        self.ax = self.figure.add_subplot(111)
        self._base = None
        self._overlay = None
        self.info = QLabel("Train first (Annotatability widget): the map needs confidence and variability.")
        self.info.setWordWrap(True)
        self.clear_button = QPushButton("Clear selection")
        self.clear_button.clicked.connect(self.clear_selection)

        top = QHBoxLayout()
        top.addWidget(QLabel("spots"))
        top.addWidget(self.layer_combo.native, 1)
        top.addWidget(QLabel("brush"))
        top.addWidget(self.mode.native)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.info)
        layout.addWidget(self.clear_button)

        self._watched: set[int] = set()
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)
        self._on_layers_changed()

    # -- layers ----------------------------------------------------------------------------
    def _choices(self, _widget=None) -> list:
        return spot_layers(self.viewer)

    def _on_layers_changed(self, event=None) -> None:
        from napari.layers import Points, Shapes

        self.layer_combo.reset_choices()
        options = [c for c in self.layer_combo.choices if c is not None]
        if self.layer_combo.value is None and options:
            scored = [lyr for lyr in options if keys.VARIABILITY in lyr.metadata["adata"].obs]
            self.layer_combo.value = (scored or options)[-1]
        for layer in self.viewer.layers:
            if id(layer) in self._watched:
                continue
            if isinstance(layer, Points) and "adata" in layer.metadata:
                self._watched.add(id(layer))
                layer.selected_data.events.items_changed.connect(
                    lambda *_a, lyr=layer: self._on_points_selection(lyr))
                layer.events.features.connect(lambda _e, lyr=layer: self._on_features(lyr))
            elif isinstance(layer, Shapes):
                self._watched.add(id(layer))
                layer.events.data.connect(lambda e, lyr=layer: self._on_shapes(lyr, e))
        if self.layer is not self.layer_combo.value:
            self.redraw()
        new = getattr(event, "value", None) if getattr(event, "type", None) == "inserted" else None
        if isinstance(new, Shapes) and len(new.data) and self.layer is not None:
            self.highlight(np.flatnonzero(spots_in_shapes(self.layer, new)))  # a layer opened with regions

    def _scores(self, layer):
        adata = layer.metadata["adata"]
        obs = adata.obs
        if keys.CONFIDENCE not in obs or keys.VARIABILITY not in obs:
            return None
        return obs[keys.VARIABILITY].to_numpy(dtype=float), obs[keys.CONFIDENCE].to_numpy(dtype=float)

    # -- drawing ---------------------------------------------------------------------------
    def redraw(self) -> None:
        """Draw the map of the chosen layer from its AnnData (the finished results)."""
        layer = self.layer_combo.value
        self.layer = layer
        self.ax.clear()
        self._base = self._overlay = None
        self.selected = np.zeros(0, dtype=np.int64)
        scores = None if layer is None else self._scores(layer)
        if scores is None:
            self._xy = np.zeros((0, 2))
            self._signature = None
            self.ax.text(0.5, 0.5, "not trained yet", ha="center", va="center", transform=self.ax.transAxes)
            self.ax.set_axis_off()
            self.info.setText("Train first (Annotatability widget): the map needs confidence and variability.")
            self._make_selector()
            self.canvas.draw_idle()
            return
        adata = layer.metadata["adata"]
        var, conf = scores
        self._xy = np.column_stack([var, conf])
        self._signature = self._sig(layer)
        if keys.CATEGORY in adata.obs:
            colors = rgba_from(adata.obs[keys.CATEGORY].astype(str).to_numpy(), category_colors(adata, keys.CATEGORY))
        else:
            colors = np.tile([0.35, 0.45, 0.6, 1.0], (len(var), 1))
        self._colors = colors
        n = len(var)
        size = float(np.clip(3000.0 / max(n, 1), 0.5, 12.0))
        self._base = self.ax.scatter(var, conf, s=size, c=colors, linewidths=0, rasterized=True)
        self._overlay = self.ax.scatter([], [], s=max(size * 2, 6.0), facecolors="none", edgecolors="black",
                                        linewidths=0.6)
        th = adata.uns.get(keys.UNS, {}).get("thresholds", {}) if isinstance(adata.uns.get(keys.UNS), dict) else {}
        if "confidence" in th and "variability" in th and th.get("rule", "paper") == "paper":
            kw = dict(color="#d62728", lw=0.8, ls="--")  # the paper's erroneous box
            self.ax.plot([0, th["variability"]], [th["confidence"]] * 2, **kw)
            self.ax.plot([th["variability"]] * 2, [0, th["confidence"]], **kw)
        elif th.get("rule") == "calibrated" and np.isfinite(float(th.get("ambiguous_variability", np.inf))):
            # the calibrated rule's line in this plane: from here on the spots are ambiguous
            self.ax.axvline(th["ambiguous_variability"], color="#ff9f1c", lw=0.8, ls="--")
        self.ax.set_xlim(0, max(0.05, float(np.nanmax(var)) * 1.08) if n else 0.5)
        self.ax.set_ylim(-0.02, 1.02)
        self.ax.set_xlabel("variability")
        self.ax.set_ylabel("confidence")
        self.ax.set_title(layer.name, fontsize=9)
        self._make_selector()
        self.info.setText(f"{n} spots. Drag a {self.mode.value} in the map to select spots on the tissue.")
        self.canvas.draw_idle()
        if layer.selected_data:
            self.highlight(sorted(layer.selected_data))

    @staticmethod
    def _sig(layer):
        obs = layer.metadata["adata"].obs
        parts = []
        for k in (keys.CONFIDENCE, keys.VARIABILITY, keys.CATEGORY):
            if k in obs:
                col = obs[k]
                parts.append(col.cat.codes.to_numpy().tobytes() if hasattr(col, "cat") else col.to_numpy().tobytes())
        return hash(tuple(parts))

    def _on_features(self, layer) -> None:
        # sync_features runs every epoch during training (live confidence only): wait for the end
        if layer is not self.layer_combo.value or layer.metadata.get("training"):
            return
        if self._sig(layer) != self._signature:
            self.redraw()

    def highlight(self, indices) -> None:
        """Outline these spots in the map and fade the others (none: show all plainly)."""
        idx = np.asarray(sorted(indices), dtype=np.int64)
        idx = idx[(idx >= 0) & (idx < len(self._xy))]
        self.selected = idx
        if self._base is None:
            return
        faded = self._colors.copy()
        if idx.size:
            faded[:, 3] = 0.18
            faded[idx, 3] = 1.0
        self._base.set_facecolors(faded)
        self._overlay.set_offsets(self._xy[idx] if idx.size else np.zeros((0, 2)))
        self.info.setText(f"{idx.size} of {len(self._xy)} spots selected." if idx.size
                          else f"{len(self._xy)} spots. Drag a {self.mode.value} in the map to select spots on the tissue.")
        self.canvas.draw_idle()

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
        """Select the spots whose (variability, confidence) lie inside the polygon ``vertices``."""
        from matplotlib.path import Path

        layer = self.layer
        if layer is None or len(self._xy) == 0 or len(vertices) < 3:
            return np.zeros(0, dtype=np.int64)
        inside = np.flatnonzero(Path(np.asarray(vertices, dtype=float)).contains_points(self._xy))
        self._syncing = True
        try:
            select_spots(layer, inside)
        finally:
            self._syncing = False
        self.highlight(inside)
        return inside

    def clear_selection(self) -> None:
        if self.layer is not None:
            self._syncing = True
            try:
                select_spots(self.layer, [])
            finally:
                self._syncing = False
        self.highlight([])

    # -- tissue -> map ---------------------------------------------------------------------
    def _on_points_selection(self, layer) -> None:
        if self._syncing or layer is not self.layer:
            return
        self.highlight(layer.selected_data)

    def _on_shapes(self, shapes, event) -> None:
        if self.layer is None or not shape_edit_finished(event):
            return
        self.highlight(np.flatnonzero(spots_in_shapes(self.layer, shapes)))
