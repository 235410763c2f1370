"""Region inspector: draw a shape on the tissue, read what the spots inside hold."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, SpinBox
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..core import keys
from ..core.errors import AnnotatabilityError
from ..core.regions import RegionSummary, region_summary
from ._selection import area_shape_layers, shape_edit_finished, spot_layers, spots_in_shapes
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
    parts = [f"<b>{s.n_cells}</b> of {s.n_total} spots"]
    if s.n_cells and np.isfinite(s.mean_confidence):
        parts[0] += f" &middot; mean confidence <b>{s.mean_confidence:.2f}</b>, variability {s.mean_variability:.2f}"
    if s.n_cells == 0:
        return parts[0] + "<br>No spot inside the drawn region(s)."
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
    """Summarise the spots inside the shapes of a Shapes layer, updated as shapes are drawn."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.summary: RegionSummary | None = None
        self.mask = np.zeros(0, dtype=bool)
        self.layer_combo = ComboBox(label="spots", choices=lambda _w=None: spot_layers(self.viewer), nullable=True)
        self.shapes_combo = ComboBox(label="regions", choices=lambda _w=None: area_shape_layers(self.viewer),
                                     nullable=True)
        self.n_genes = SpinBox(label="genes", value=10, min=0, max=100)
        for w in (self.layer_combo, self.shapes_combo, self.n_genes):
            w.changed.connect(lambda _v: self.update_summary())
        self.draw_button = QPushButton("Draw a region")
        self.draw_button.setToolTip("Add (or pick) a Shapes layer in polygon mode: click the corners, double-click to close")
        self.draw_button.clicked.connect(self.start_drawing)
        self.text = QLabel("Draw a polygon, rectangle or ellipse on the tissue to summarise the spots inside.")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)

        row = QHBoxLayout()
        for label, w in (("spots", self.layer_combo), ("regions", self.shapes_combo), ("genes", self.n_genes)):
            row.addWidget(QLabel(label))
            row.addWidget(w.native, 1 if label != "genes" else 0)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.draw_button)
        layout.addWidget(self.text)
        layout.addStretch(1)

        self._watched: set[int] = set()
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)
        self._on_layers_changed()

    def _on_layers_changed(self, event=None) -> None:
        from napari.layers import Shapes

        for combo in (self.layer_combo, self.shapes_combo):
            combo.reset_choices()
            options = [c for c in combo.choices if c is not None]
            if combo.value is None and options:
                combo.value = options[-1]
        new = getattr(event, "value", None) if getattr(event, "type", None) == "inserted" else None
        if isinstance(new, Shapes):
            self.shapes_combo.value = new  # the region layer just added is the one to read
        for layer in area_shape_layers(self.viewer):
            if id(layer) not in self._watched:
                self._watched.add(id(layer))
                layer.events.data.connect(lambda e, lyr=layer: self._on_shapes(lyr, e))
        self.update_summary()

    def _on_shapes(self, shapes, event) -> None:
        if not shape_edit_finished(event):
            return
        if shapes is not self.shapes_combo.value:
            self.shapes_combo.value = shapes  # update_summary runs through changed
        else:
            self.update_summary()

    def start_drawing(self) -> None:
        """Pick (or add) a Shapes layer aligned with the spots and switch it to polygon mode."""
        shapes = self.shapes_combo.value
        if shapes is None:
            spots = self.layer_combo.value
            kwargs = dict(name="regions", edge_color="#ffff00", face_color=[1, 1, 0, 0.12], edge_width=2)
            if spots is not None:
                kwargs.update(scale=spots.scale, translate=spots.translate)
                kwargs["edge_width"] = max(2.0, float(np.median(spots.size)) / 4) if len(spots.data) else 2.0
            shapes = self.viewer.add_shapes(**kwargs)
        self.viewer.layers.selection.active = shapes
        shapes.mode = "add_polygon"

    def update_summary(self) -> RegionSummary | None:
        """Recompute the summary of the spots inside the current regions."""
        spots, shapes = self.layer_combo.value, self.shapes_combo.value
        if spots is None or shapes is None or len(shapes.data) == 0:
            self.summary = None
            self.mask = np.zeros(0, dtype=bool)
            self.text.setText("Draw a polygon, rectangle or ellipse on the tissue to summarise the spots inside.")
            return None
        adata = spots.metadata["adata"]
        self.mask = spots_in_shapes(spots, shapes)
        info = adata.uns.get(keys.UNS, {})
        label_key = info.get("label_key") if isinstance(info, dict) else None
        if label_key is None:
            label_key = spots.metadata.get("color_by") if spots.metadata.get("color_by") in adata.obs else None
        try:
            self.summary = region_summary(adata, self.mask, label_key=label_key, n_genes=int(self.n_genes.value))
        except AnnotatabilityError as err:
            self.summary = None
            self.text.setText(f"Cannot summarise: {html.escape(str(err))}")
            return None
        self.text.setText(summary_html(self.summary, adata, label_key))
        return self.summary
