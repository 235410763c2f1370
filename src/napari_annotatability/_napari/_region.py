"""Region inspector: draw a shape on the tissue, read what the cells inside hold (spots or a mask's cells)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, SpinBox
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFormLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..core import keys
from ..core.errors import AnnotatabilityError
from ..core.regions import RegionSummary, region_summary
from ._dock import DockLink, LayerPicker, on_click
from ._layout import compact, place_when_docked, scrolling
from ._selection import area_shape_layers, shape_edit_finished
from ._spatial import category_colors

if TYPE_CHECKING:
    import napari

__all__ = ["RegionWidget"]

def _bar_rows(counts: dict[str, int], total: int, colors: dict[str, str] | None = None, limit: int = 8) -> str:
    rows = []
    items = list(counts.items())
    for name, count in items[:limit]:
        share = count / total if total else 0.0
        color = (colors or {}).get(name, "#7f7f7f")
        width = int(round(80 * share))
        rows.append(
            f"<tr><td><span style='color:{color}'>&#9632;</span> {html.escape(name)}</td>"
            f"<td align='right'>{count}</td><td align='right'>{share:.0%}</td>"
            f"<td><div style='background:{color}; width:{width}px'>&nbsp;</div></td></tr>"
        )
    if len(items) > limit:
        rest = sum(c for _, c in items[limit:])
        rows.append(f"<tr><td>({len(items) - limit} more)</td><td align='right'>{rest}</td><td></td><td></td></tr>")
    return "<table cellspacing='0' cellpadding='2'>" + "".join(rows) + "</table>"


def summary_html(s: RegionSummary, adata, label_key: str | None) -> str:
    """The summary as rich text for a QLabel."""
    parts = [f"<b>{s.n_cells}</b> of {s.n_total} cells"]
    if s.n_cells and np.isfinite(s.mean_confidence):
        parts[0] += f" &middot; mean confidence <b>{s.mean_confidence:.2f}</b>, variability {s.mean_variability:.2f}"
    if s.n_cells == 0:
        return parts[0] + "<br>No cell inside the drawn region(s)."
    if s.categories:
        parts.append("<b>Category</b>" + _bar_rows(s.categories, s.n_cells, dict(zip(keys.CATEGORIES, keys.CATEGORY_COLORS))))
    if s.labels:
        colors = category_colors(adata, label_key) if label_key in adata.obs else None
        parts.append(f"<b>Annotation</b> ({html.escape(str(label_key))})" + _bar_rows(s.labels, s.n_cells, colors))
    if s.suggested:
        colors = category_colors(adata, keys.SUGGESTED_LABEL)
        parts.append("<b>Suggested label</b>" + _bar_rows(s.suggested, s.n_cells, colors))
    if len(s.top_genes):
        rows = "".join(
            f"<tr><td>{html.escape(str(g.gene))}</td><td align='right'>{g.r:.2f}</td>"
            f"<td align='right'>{g.mean_in:.2f}</td><td align='right'>{g.mean_out:.2f}</td></tr>"
            for g in s.top_genes.itertuples()
        )
        parts.append("<b>Top genes of the region</b> (r with in-region; mean in / out)"
                     "<table cellspacing='0' cellpadding='2'><tr><th>gene</th><th>r</th><th>in</th><th>out</th></tr>" + rows + "</table>")
    return "<br>".join(parts)


class RegionWidget(QWidget):
    """Summarise the cells inside the shapes of a Shapes layer, updated as shapes are drawn."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.summary: RegionSummary | None = None
        self.mask = np.zeros(0, dtype=bool)
        self.link = DockLink(self, napari_viewer)
        self.model = self.link.model
        self.picker = LayerPicker(self.link, "cells")
        self.layer_combo = self.picker.combo
        self.shapes_combo = ComboBox(label="regions", choices=lambda _w=None: area_shape_layers(self.viewer),
                                     nullable=True)
        self.n_genes = SpinBox(label="genes", value=10, min=0, max=100)
        for w in (self.layer_combo, self.shapes_combo, self.n_genes):
            w.changed.connect(lambda _v: self.update_summary())
        self.draw_button = QPushButton("Draw a region")
        self.draw_button.setToolTip("Add (or pick) a Shapes layer in polygon mode: click the corners, double-click to close")
        on_click(self.draw_button, self.start_drawing)
        self.text = QLabel("Draw a polygon, rectangle or ellipse on the tissue to summarise the cells inside.")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)

        form = QFormLayout()  # one row each: three in a row cut "regions" to "regi" in a narrow dock
        for label, w in (("cells", self.layer_combo), ("regions", self.shapes_combo), ("genes", self.n_genes)):
            form.addRow(label, w.native)
        layout = QVBoxLayout(scrolling(self))  # scrolls rather than growing the window
        layout.addLayout(form)
        layout.addWidget(self.draw_button)
        layout.addWidget(self.text)
        layout.addStretch(1)

        # the shapes themselves: their layers come and go with the viewer's layer list
        self._shape_slots: dict[int, tuple] = {}
        self.viewer.layers.events.inserted.connect(self._on_viewer_layers)
        self.viewer.layers.events.removed.connect(self._on_viewer_layers)
        self.link.on_close(self._disconnect_shapes)
        self.link.connect(self.model.layers_changed, self._on_layers_changed)
        self.link.connect(self.model.results_changed, self._on_results)
        self._on_viewer_layers()
        compact(self)
        place_when_docked(self, napari_viewer)  # the Plugins menu too: a tab of the Inspect group

    def _disconnect_shapes(self) -> None:
        for layer, slot in self._shape_slots.values():
            layer.events.data.disconnect(slot)
        self._shape_slots.clear()
        for emitter in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            emitter.disconnect(self._on_viewer_layers)

    def _on_viewer_layers(self, event=None) -> None:
        from napari.layers import Shapes

        self.shapes_combo.reset_choices()
        options = [c for c in self.shapes_combo.choices if c is not None]
        if self.shapes_combo.value is None and options:
            self.shapes_combo.value = options[-1]
        new = getattr(event, "value", None) if getattr(event, "type", None) == "inserted" else None
        if isinstance(new, Shapes):
            self.shapes_combo.value = new  # the region layer just added is the one to read
        present = {id(lyr) for lyr in area_shape_layers(self.viewer)}
        for key in [k for k in self._shape_slots if k not in present]:
            layer, slot = self._shape_slots.pop(key)
            layer.events.data.disconnect(slot)
        for layer in area_shape_layers(self.viewer):
            if id(layer) not in self._shape_slots:
                slot = (lambda e, lyr=layer: self._on_shapes(lyr, e))
                layer.events.data.connect(slot)
                self._shape_slots[id(layer)] = (layer, slot)
        self._on_layers_changed()

    def _on_layers_changed(self, *_a) -> None:
        self.picker.refresh()
        self.update_summary()

    def _on_results(self, cell) -> None:
        if cell.layer is self.layer_combo.value and not cell.training:
            self.update_summary()

    def _on_shapes(self, shapes, event) -> None:
        if not shape_edit_finished(event):
            return
        if shapes is not self.shapes_combo.value:
            self.shapes_combo.value = shapes  # update_summary runs through changed
        else:
            self.update_summary()

    def start_drawing(self) -> None:
        """Pick (or add) a Shapes layer aligned with the cells and switch it to polygon mode."""
        shapes = self.shapes_combo.value
        if shapes is None:
            kwargs = dict(name="regions", edge_color="#ffff00", face_color=[1, 1, 0, 0.12], edge_width=2)
            cell = self.picker.cell
            if cell is not None and cell.n:
                kwargs["edge_width"] = max(2.0, cell.cell_diameter() / 4)  # shapes live in world coordinates
            shapes = self.viewer.add_shapes(**kwargs)
        self.viewer.layers.selection.active = shapes
        shapes.mode = "add_polygon"

    def update_summary(self) -> RegionSummary | None:
        """Recompute the summary of the cells inside the current regions."""
        cell, shapes = self.picker.cell, self.shapes_combo.value
        if cell is None or shapes is None or len(shapes.data) == 0 or cell.training:
            self.summary = None
            self.mask = np.zeros(0, dtype=bool)
            self.text.setText("Draw a polygon, rectangle or ellipse on the tissue to summarise the cells inside.")
            return None
        adata = cell.adata
        self.mask = np.zeros(adata.n_obs, dtype=bool)
        self.mask[cell.rows_in_shapes(shapes)] = True
        info = adata.uns.get(keys.UNS, {})
        label_key = info.get("label_key") if isinstance(info, dict) else None
        if label_key is None:
            shown = cell.layer.metadata.get("color_by")
            label_key = shown if shown in adata.obs else None
        try:
            # the region is part of this layer's cells (one section of a table several share)
            self.summary = region_summary(adata, self.mask, label_key=label_key, n_genes=int(self.n_genes.value),
                                          within=cell.rows)
        except AnnotatabilityError as err:
            self.summary = None
            self.text.setText(f"Cannot summarise: {html.escape(str(err))}")
            return None
        self.text.setText(summary_html(self.summary, adata, label_key))
        return self.summary
