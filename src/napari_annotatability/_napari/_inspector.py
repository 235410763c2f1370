"""Spot inspector: the values and the training trajectory of the selected spot."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

from ..core import keys
from ..core.quality import describe_quality, quality_cutoff_text
from ._dock import DockLink
from ._layout import compact, place_when_docked, scrolling

if TYPE_CHECKING:
    import napari

__all__ = ["InspectorWidget", "MARKER_NAME"]

#: the layer that rings the inspected cell on the canvas
MARKER_NAME = "inspected cell"
MARKER_COLOR = "#ffff00"
#: the ring's diameter, in cell diameters, and its line width (relative to its size)
MARKER_SCALE = 1.8
MARKER_BORDER = 0.15

FIELDS = (
    ("annotated label", None),
    ("suggested label", keys.SUGGESTED_LABEL),
    ("p(suggested)", keys.SUGGESTED_PROB),
    # relative (a mean of percentile ranks): shown with its rank, and the erroneous cut-off below it
    ("label quality", keys.LABEL_QUALITY),
    ("erroneous at or below", "thresholds:label_quality"),
    ("confidence", keys.CONFIDENCE),
    ("variability", keys.VARIABILITY),
    ("category", keys.CATEGORY),
)


class InspectorWidget(QWidget):
    """Click a spot or a cell to see its label, scores and p(label) per epoch.

    In pan/zoom mode a click (a press and release without a drag) on a spot or on a cell of a mask
    shows it; selecting a single cell (select mode, a click on a mask, the curation queue) does too.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.viewer = napari_viewer
        self.title = QLabel("Click a spot or a cell on the tissue to inspect it.")
        self.title.setWordWrap(True)
        self.values: dict[str, QLabel] = {}
        form = QFormLayout()
        for name, _ in FIELDS:
            self.values[name] = QLabel("—")
            self.values[name].setWordWrap(True)  # "0.001, rank 1 of 3 005 (lowest first)" in a narrow dock
            form.addRow(name, self.values[name])
        # fixed margins, not tight_layout: a tight layout costs ~0.35 s a draw, and the review queue
        # of the curation dock redraws the inspector at every step
        self.figure = Figure(figsize=(3.2, 2.0))
        self.figure.subplots_adjust(left=0.2, right=0.96, bottom=0.24, top=0.95)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(170)
        self.ax = self.figure.add_subplot(111)
        self._line = None  # the trajectory plot, updated in place from spot to spot
        self._note = None
        self._shown = None
        # the axes (ticks, labels) are drawn once and cached; a new spot only redraws its line
        # (blitting: a full draw of the axes costs ~0.1 s, the line alone a few ms)
        self._background = None
        self.canvas.mpl_connect("draw_event", self._on_draw)
        layout = QVBoxLayout(scrolling(self))  # scrolls rather than growing the window
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addWidget(self.canvas)
        layout.addStretch(1)
        self.link = DockLink(self, napari_viewer)
        self.link.connect(self.link.model.clicked, self._on_click)
        self.link.connect(self.link.model.selection_changed, self._on_selection)
        self.link.connect(self.link.model.results_changed, self._on_results)
        self.marker = None  # the ring around the inspected cell
        self.link.on_close(self._remove_marker)
        compact(self)
        place_when_docked(self, napari_viewer)  # the Plugins menu too: a tab of the Inspect group

    # -- the marker on the canvas ---------------------------------------------------------------
    def _mark(self, cell, row: int) -> None:
        """Ring the inspected cell on the canvas (a one-point layer of its own, not selectable)."""
        try:
            pos = np.asarray(cell.world_position(row), dtype=float)[-2:]
            diameter = float(cell.diameter(row)) or float(cell.cell_diameter())
        except (IndexError, ValueError, AttributeError):
            return
        size = max(diameter * MARKER_SCALE, 1.0)
        marker = self.marker
        if marker is None or marker not in self.viewer.layers:
            layers = self.viewer.layers
            active = layers.selection.active
            marker = self.viewer.add_points(
                pos[None, :], name=MARKER_NAME, size=size, face_color="transparent", border_color=MARKER_COLOR,
                border_width=MARKER_BORDER, border_width_is_relative=True, opacity=1.0, blending="translucent")
            marker.editable = False
            self.marker = marker
            layers.selection.active = active  # the marker is not what the user works on
        else:
            marker.data = pos[None, :]
            marker.size = size
        marker.visible = True
        marker.refresh()

    def _remove_marker(self) -> None:
        marker, self.marker = self.marker, None
        if marker is not None and marker in self.viewer.layers:
            self.viewer.layers.remove(marker)

    def _on_click(self, cell, row: int) -> None:
        """A click (no drag, pan/zoom mode) on a cell of any layer of cells shows it."""
        self.show_spot(cell.layer, row)

    def _on_selection(self, cell, rows) -> None:
        if len(rows) == 1:
            self.show_spot(cell.layer, int(rows[0]))

    def _on_results(self, cell) -> None:
        """New results (a training finished, labels were edited): the cell on show is shown anew."""
        if self._shown is None or self._shown[0] != id(cell.layer) or cell.training:
            return
        index = self._shown[1]
        if index < cell.adata.n_obs:
            self._shown = None  # its values changed even if its trajectory did not
            self.show_spot(cell.layer, index)

    def show_spot(self, layer, index: int) -> None:
        """Show obs row ``index`` of ``layer``'s AnnData."""
        adata = layer.metadata["adata"]
        obs = adata.obs
        info = adata.uns.get(keys.UNS, {})
        label_key = info.get("label_key") if isinstance(info, dict) else None
        if label_key is None and layer.metadata.get("color_by") in obs:
            label_key = layer.metadata["color_by"]  # not trained yet: the annotation on show
        self.title.setText(f"<b>{adata.obs_names[index]}</b> ({layer.name}, cell {index})")
        cell = self.link.model.get(layer)
        if cell is not None:
            self._mark(cell, index)
        for name, key in FIELDS:
            key = key or label_key
            if key == "thresholds:label_quality":
                text = quality_cutoff_text(adata)
            elif key is None or key not in obs:
                text = "—"
            elif key == keys.LABEL_QUALITY:
                text = describe_quality(adata, index, cutoff=False)
            else:
                value = obs[key].iloc[index]
                text = f"{value:.3f}" if isinstance(value, (float, np.floating)) else str(value)
            self.values[name].setText(text)
        traj = adata.obsm.get(keys.TRAJECTORY)
        y = np.asarray(traj[index]) if traj is not None else None
        shown = (id(layer), index, None if y is None else y.tobytes())
        if shown == self._shown:
            return  # the same spot twice (a selection emits more than one event): no redraw
        self._shown = shown
        if y is not None:
            x = np.arange(1, y.size + 1)
            xlim = (1, max(2, y.size))
            if self._line is not None and self._note is None and self.ax.get_xlim() == xlim:
                self._line.set_data(x, y)
                if self._blit():
                    return
            else:
                self.ax.clear()
                self._note = None
                (self._line,) = self.ax.plot(x, y, color="#1f77b4", animated=True)
                self.ax.set_ylim(0, 1)
                self.ax.set_xlim(*xlim)
                self.ax.set_xlabel("epoch")
                self.ax.set_ylabel("p(annotated label)")
        elif self._note is None:
            self.ax.clear()
            self._line = None
            self._note = self.ax.text(0.5, 0.5, "not trained yet", ha="center", va="center",
                                      transform=self.ax.transAxes)
        self._background = None
        self.canvas.draw_idle()

    def _on_draw(self, _event) -> None:
        """After a full draw: cache the axes without the line, then draw the line on them."""
        self._background = self.canvas.copy_from_bbox(self.ax.bbox)
        if self._line is not None and self._note is None:
            self.ax.draw_artist(self._line)

    def _blit(self) -> bool:
        """Redraw only the line over the cached axes; False when there is no cache yet."""
        if self._background is None:
            return False
        self.canvas.restore_region(self._background)
        self.ax.draw_artist(self._line)
        self.canvas.update()  # paint the buffer at the next turn (canvas.blit repaints at once: slow)
        return True
