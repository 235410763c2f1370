"""Genes dock: the ranked gene-association table; clicking a gene colours the spots by it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QTableWidget, QTableWidgetItem,
    QVBoxLayout, QWidget,
)

from ..core import keys
from ..core.genes import expression
from ._colors import color_by, sync_features
from ._legend import hide_legend
from ._selection import spot_layers

if TYPE_CHECKING:
    import napari

__all__ = ["GenesWidget", "RANKINGS"]

#: ranking shown -> var column it sorts by
RANKINGS = {
    "low confidence (hard to learn)": keys.GENE_LOW,
    "high confidence (easy to learn)": keys.GENE_HIGH,
    "mid confidence (ambiguous)": keys.GENE_MID,
}
COLUMNS = (("high", keys.GENE_HIGH), ("low", keys.GENE_LOW), ("mid", keys.GENE_MID))
MAX_ROWS = 500


def _scored_layers(viewer) -> list:
    return [lyr for lyr in spot_layers(viewer) if keys.GENE_HIGH in lyr.metadata["adata"].var]


class GenesWidget(QWidget):
    """Genes ranked by how their expression tracks confidence (``annot_gene_*``)."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.genes: list[str] = []
        self.layer_combo = ComboBox(label="spots", choices=lambda _w=None: _scored_layers(self.viewer), nullable=True)
        self.ranking = ComboBox(label="rank by", choices=list(RANKINGS), value=next(iter(RANKINGS)))
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("filter genes (e.g. CD3)")
        self.table = QTableWidget(0, 1 + len(COLUMNS))
        self.table.setHorizontalHeaderLabels(["gene", *(c for c, _ in COLUMNS)])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.cellClicked.connect(lambda row, _col: self.show_gene(self.table.item(row, 0).text()))
        self.info = QLabel("Train first (Annotatability widget): the table needs the gene-association scores.")
        self.info.setWordWrap(True)

        for w in (self.layer_combo, self.ranking):
            w.changed.connect(lambda _v: self.refresh())
        self.filter.textChanged.connect(lambda _t: self.refresh())
        row = QHBoxLayout()
        row.addWidget(QLabel("spots"))
        row.addWidget(self.layer_combo.native, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.ranking.native)
        layout.addWidget(self.filter)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.info)

        self._watched: set[int] = set()
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)
        self._on_layers_changed()

    def _on_layers_changed(self, _event=None) -> None:
        from napari.layers import Points

        self.layer_combo.reset_choices()
        options = [c for c in self.layer_combo.choices if c is not None]
        if self.layer_combo.value is None and options:
            self.layer_combo.value = options[-1]
        for layer in self.viewer.layers:  # a training that finishes adds the scores to a layer
            if isinstance(layer, Points) and "adata" in layer.metadata and id(layer) not in self._watched:
                self._watched.add(id(layer))
                layer.events.features.connect(lambda _e: self._on_features())
        self.refresh()

    def _on_features(self) -> None:
        before = self.layer_combo.value
        self.layer_combo.reset_choices()
        if self.layer_combo.value is None:
            options = [c for c in self.layer_combo.choices if c is not None]
            if options:
                self.layer_combo.value = options[-1]
        if self.layer_combo.value is not before or (before is not None and not self.genes):
            self.refresh()

    def refresh(self) -> None:
        """Fill the table: genes sorted by the chosen score, filtered by name."""
        layer = self.layer_combo.value
        self.table.setRowCount(0)
        self.genes = []
        if layer is None:
            self.info.setText("Train first (Annotatability widget): the table needs the gene-association scores.")
            return
        var = layer.metadata["adata"].var
        col = RANKINGS[self.ranking.value]
        order = np.argsort(-var[col].to_numpy(dtype=float), kind="stable")
        names = var.index.to_numpy().astype(str)[order]
        text = self.filter.text().strip().lower()
        if text:
            keep = np.char.find(np.char.lower(names), text) >= 0
            order, names = order[keep], names[keep]
        shown = min(MAX_ROWS, len(order))
        self.table.setRowCount(shown)
        values = {k: var[k].to_numpy(dtype=float) for _, k in COLUMNS}
        for r in range(shown):
            self.table.setItem(r, 0, QTableWidgetItem(names[r]))
            for c, (_, k) in enumerate(COLUMNS, start=1):
                item = QTableWidgetItem(f"{values[k][order[r]]:+.3f}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.genes = list(names[:shown])
        more = f" (first {shown} of {len(order)})" if len(order) > shown else ""
        self.info.setText(f"{len(order)} genes{more}. Click a gene to colour the spots by its expression.")

    def show_gene(self, gene: str) -> None:
        """Colour the spots by ``gene``'s expression (a colormap over its range)."""
        layer = self.layer_combo.value
        if layer is None:
            return
        adata = layer.metadata["adata"]
        key = f"{gene} expression"
        sync_features(layer, adata, {key: expression(adata, gene)})
        color_by(layer, adata, key)
        hide_legend(self.viewer)
        self.viewer.layers.selection.active = layer
        self.info.setText(f"Spots coloured by {gene} expression.")
