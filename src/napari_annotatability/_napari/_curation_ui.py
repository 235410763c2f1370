"""The curation dock's panels: the review queue, relabel many, history, retrain (Qt layout only)."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from ..core import keys
from ._dock import on_click
from ._layout import scrolling
from ._retrain import RetrainPanel

__all__ = ["build_panels", "QUEUE_CHOICES", "GROUP_CHOICES"]

#: queue source shown -> what core.review_order takes ("selection": the layer's selected cells)
QUEUE_CHOICES = {
    "suspicious": "suspicious",
    "erroneous": "erroneous",
    "ambiguous": "ambiguous",
    "selected cells": "selection",
}
#: cells relabelled at once
GROUP_CHOICES = ("selected cells", "inside drawn shapes", "erroneous", "ambiguous", "review queue")


def build_panels(dock, top) -> None:
    """Make the dock's widgets (as attributes of ``dock``) and lay them out under ``top``."""
    # review ------------------------------------------------------------------------------
    dock.queue_combo = QComboBox()
    dock.queue_combo.addItems(list(QUEUE_CHOICES))
    dock.queue_combo.setToolTip("suspicious: the erroneous cells, then the ambiguous ones (by label quality)")
    dock.start_button = QPushButton("Start review")
    on_click(dock.start_button, dock.start_review)
    dock.progress = QLabel("Train first, then start a review of the suspicious cells.")
    dock.progress.setWordWrap(True)
    dock.info = QLabel("")
    dock.info.setWordWrap(True)
    dock.info.setTextFormat(Qt.TextFormat.RichText)
    dock.info.setMinimumHeight(4 * dock.info.fontMetrics().lineSpacing() + 4)  # no relayout per cell
    dock.buttons: dict[str, QPushButton] = {}
    nav = QGridLayout()
    for i, (name, text, tip, slot) in enumerate((
        ("previous", "◀ Previous (P)", "back to the cell before", dock.previous_cell),
        ("next", "Next (N) ▶", "on to the next cell (the current one stays unreviewed)", dock.next_cell),
        ("accept", "Accept (A)", "give the cell its suggested label, then go on", dock.accept),
        ("skip", "Keep (S)", "keep the cell's label (it counts as reviewed), then go on", dock.skip),
    )):
        btn = QPushButton(text)
        btn.setToolTip(tip)
        on_click(btn, slot)
        nav.addWidget(btn, i // 2, i % 2)
        dock.buttons[name] = btn
    dock.label_box = QComboBox()
    dock.label_box.setEditable(True)
    dock.label_box.setToolTip("the label to give; keys 1-9 give the cell under review the n-th label")
    dock.allow_new = QCheckBox("allow a new label")
    dock.allow_new.setToolTip("a label that is not yet a category of the annotation is refused unless ticked")
    dock.buttons["relabel"] = QPushButton("Relabel")
    dock.buttons["relabel"].setToolTip("give the cell under review the label in the box")
    on_click(dock.buttons["relabel"], dock.relabel_current)
    relabel = QHBoxLayout()
    relabel.addWidget(QLabel("label"))
    relabel.addWidget(dock.label_box, 1)
    relabel.addWidget(dock.buttons["relabel"])
    review = QVBoxLayout()
    row = QHBoxLayout()
    row.addWidget(dock.queue_combo, 1)
    row.addWidget(dock.start_button)
    review.addLayout(row)
    review.addWidget(dock.progress)
    review.addWidget(dock.info)
    review.addLayout(nav)
    review.addLayout(relabel)
    review.addWidget(dock.allow_new)
    review_box = QGroupBox("Review queue")
    review_box.setLayout(review)

    # many at once ---------------------------------------------------------------------------
    dock.group_combo = QComboBox()
    dock.group_combo.addItems(list(GROUP_CHOICES))
    dock.buttons["bulk"] = QPushButton("Give the label")
    dock.buttons["bulk"].setToolTip("give every cell of the group the label in the label box (one undo)")
    on_click(dock.buttons["bulk"], dock.relabel_group)
    dock.buttons["bulk_accept"] = QPushButton("Accept suggested")
    dock.buttons["bulk_accept"].setToolTip("give every cell of the group its own suggested label (one undo)")
    on_click(dock.buttons["bulk_accept"], dock.relabel_group, suggested=True)
    many = QGridLayout()
    which = QHBoxLayout()
    which.addWidget(QLabel("cells"))
    which.addWidget(dock.group_combo, 1)
    many.addLayout(which, 0, 0, 1, 2)
    many.addWidget(dock.buttons["bulk"], 1, 0)
    many.addWidget(dock.buttons["bulk_accept"], 1, 1)
    many_box = QGroupBox("Relabel many")
    many_box.setLayout(many)

    # history --------------------------------------------------------------------------------
    dock.buttons["undo"] = QPushButton("Undo")
    dock.buttons["undo"].setToolTip("take the last edit back (Ctrl+Z)")
    on_click(dock.buttons["undo"], dock.undo)
    dock.buttons["redo"] = QPushButton("Redo")
    dock.buttons["redo"].setToolTip("do the edit taken back again (Ctrl+Shift+Z)")
    on_click(dock.buttons["redo"], dock.redo)
    dock.buttons["export"] = QPushButton("Export edits...")
    dock.buttons["export"].setToolTip("the edit log as CSV (cell, original, previous, curated, source, time)")
    on_click(dock.buttons["export"], dock._ask_csv_path)
    dock.edits = QLabel("")
    history = QGridLayout()
    history.addWidget(dock.buttons["undo"], 0, 0)
    history.addWidget(dock.buttons["redo"], 0, 1)
    history.addWidget(dock.edits, 1, 0)
    history.addWidget(dock.buttons["export"], 1, 1)

    # retrain and compare --------------------------------------------------------------------
    dock.retraining = RetrainPanel(dock.viewer, dock._say, dock._retrain_finished)
    dock.compare = dock.retraining.compare
    dock.buttons["retrain"] = dock.retraining.button
    on_click(dock.buttons["retrain"], dock.retrain)
    dock.buttons["color_change"] = dock.retraining.color_change
    on_click(dock.buttons["color_change"], dock.color, keys.CATEGORY_CHANGE)
    dock.buttons["color_curated"] = dock.retraining.color_curated
    on_click(dock.buttons["color_curated"], dock.color, None)

    dock.status = QLabel("")
    dock.status.setWordWrap(True)
    # the content scrolls: a dock this tall would otherwise stretch the window past the screen
    layout = QVBoxLayout(scrolling(dock))
    layout.setContentsMargins(6, 6, 6, 6)
    layout.addLayout(top)
    layout.addWidget(review_box)
    layout.addWidget(many_box)
    layout.addLayout(history)
    layout.addWidget(dock.retraining)
    layout.addWidget(dock.status)
    layout.addStretch(1)

