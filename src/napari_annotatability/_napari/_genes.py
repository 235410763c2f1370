"""Genes dock: the ranked gene-association table; clicking a gene colours the cells by it."""

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
from ._dock import DockLink, LayerPicker, show_colouring
from ._layout import compact, place_when_docked

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


class GenesWidget(QWidget):
    """Genes ranked by how their expression tracks confidence (``annot_gene_*``)."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.genes: list[str] = []
        self.link = DockLink(self, napari_viewer)
        self.model = self.link.model
        self.picker = LayerPicker(self.link, "cells", var=keys.GENE_HIGH)
        self.layer_combo = self.picker.combo
        self.ranking = ComboBox(label="rank by", choices=list(RANKINGS), value=next(iter(RANKINGS)))
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("filter genes (e.g. CD3)")
        self.table = QTableWidget(0, 1 + len(COLUMNS))
        self.table.setHorizontalHeaderLabels(["gene", *(c for c, _ in COLUMNS)])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, 1 + len(COLUMNS)):  # the scores as wide as their numbers: all in view in a narrow dock
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.table.cellClicked.connect(lambda row, _col: self.show_gene(self.table.item(row, 0).text()))
        self.info = QLabel("Train first (Annotatability widget): the table needs the gene-association scores.")
        self.info.setWordWrap(True)

        for w in (self.layer_combo, self.ranking):
            w.changed.connect(lambda _v: self.refresh())
        self.filter.textChanged.connect(lambda _t: self.refresh())
        row = QHBoxLayout()
        row.addWidget(QLabel("cells"))
        row.addWidget(self.layer_combo.native, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.ranking.native)
        layout.addWidget(self.filter)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.info)

        self.link.connect(self.model.layers_changed, self._on_layers_changed)
        self.link.connect(self.model.results_changed, self._on_results)
        self._on_layers_changed()
        compact(self)
        place_when_docked(self, napari_viewer)  # the Plugins menu too: a tab of the Inspect group

    def _on_layers_changed(self, *_a) -> None:
        self.picker.refresh()
        self.refresh()

    def _on_results(self, _cell) -> None:
        """A training finished: a layer may have gene scores now."""
        before = self.layer_combo.value
        self.picker.refresh()
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
        self.info.setText(f"{len(order)} genes{more}. Click a gene to colour the cells by its expression.")

    def show_gene(self, gene: str) -> None:
        """Colour the cells by ``gene``'s expression (a colormap over its range)."""
        cell = self.picker.cell
        if cell is None:
            return
        key = f"{gene} expression"
        cell.sync({key: expression(cell.adata, gene)})
        show_colouring(self.viewer, cell, key, cell.color_by(key))
        self.viewer.layers.selection.active = cell.layer
        self.info.setText(f"Cells coloured by {gene} expression.")
