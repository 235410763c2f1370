"""Spot inspector: the values and the training trajectory of the selected spot."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

from ..core import keys
from ._selection import spot_layers

if TYPE_CHECKING:
    import napari

__all__ = ["InspectorWidget"]

FIELDS = (
    ("annotated label", None),
    ("suggested label", keys.SUGGESTED_LABEL),
    ("p(suggested)", keys.SUGGESTED_PROB),
    ("confidence", keys.CONFIDENCE),
    ("variability", keys.VARIABILITY),
    ("category", keys.CATEGORY),
)


class InspectorWidget(QWidget):
    """Click a spot (in any mode) to see its label, scores and p(label) per epoch.

    In pan/zoom mode a click (a press and release without a drag) on a spot shows it; in select
    mode selecting a single spot does.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.viewer = napari_viewer
        self.title = QLabel("Click a spot on the tissue to inspect it.")
        self.title.setWordWrap(True)
        self.values: dict[str, QLabel] = {}
        form = QFormLayout()
        for name, _ in FIELDS:
            self.values[name] = QLabel("—")
            form.addRow(name, self.values[name])
        self.figure = Figure(figsize=(3.2, 2.0), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(170)
        self.ax = self.figure.add_subplot(111)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addWidget(self.canvas)
        layout.addStretch(1)
        self._watched: set[int] = set()
        self.viewer.layers.events.inserted.connect(self._watch_layers)
        self._watch_layers()

    def _watch_layers(self, _event=None) -> None:
        for layer in spot_layers(self.viewer):
            if id(layer) in self._watched:
                continue
            self._watched.add(id(layer))
            layer.selected_data.events.items_changed.connect(lambda *_a, lyr=layer: self._on_selection(lyr))
            layer.mouse_drag_callbacks.append(self._on_click)

    def _on_click(self, layer, event):
        """A click without a drag on a spot (pan/zoom mode) shows that spot."""
        if layer.mode != "pan_zoom" or "adata" not in layer.metadata:
            return
        start = tuple(event.position)
        yield
        while event.type == "mouse_move":
            yield
        if event.type == "mouse_release" and tuple(event.position) == start:
            index = layer.get_value(start, world=True)
            if index is not None:
                self.show_spot(layer, int(index))

    def _on_selection(self, layer) -> None:
        selected = sorted(layer.selected_data)
        if len(selected) == 1:
            self.show_spot(layer, selected[0])

    def show_spot(self, layer, index: int) -> None:
        """Show spot ``index`` of ``layer``."""
        adata = layer.metadata["adata"]
        obs = adata.obs
        info = adata.uns.get(keys.UNS, {})
        label_key = info.get("label_key") if isinstance(info, dict) else None
        if label_key is None and layer.metadata.get("color_by") in obs:
            label_key = layer.metadata["color_by"]  # not trained yet: the annotation on show
        self.title.setText(f"<b>{adata.obs_names[index]}</b> ({layer.name}, spot {index})")
        for name, key in FIELDS:
            key = key or label_key
            if key is None or key not in obs:
                text = "—"
            else:
                value = obs[key].iloc[index]
                text = f"{value:.3f}" if isinstance(value, (float, np.floating)) else str(value)
            self.values[name].setText(text)
        self.ax.clear()
        traj = adata.obsm.get(keys.TRAJECTORY)
        if traj is not None:
            y = np.asarray(traj[index])
            self.ax.plot(np.arange(1, y.size + 1), y, color="#1f77b4")
            self.ax.set_ylim(0, 1)
            self.ax.set_xlabel("epoch")
            self.ax.set_ylabel("p(annotated label)")
        else:
            self.ax.text(0.5, 0.5, "not trained yet", ha="center", va="center", transform=self.ax.transAxes)
        self.canvas.draw_idle()
