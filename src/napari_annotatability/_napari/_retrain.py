"""Retrain on curated labels and show what changed (the last section of the curation dock).

The training runs through the Annotatability widget (``AnnotatabilityWidget.train_on``: its
worker, its settings, its live recolouring); the original annotation is recorded beside the
curated one (``compare_key``, as ``core.compare_annotations`` does), and when the results are
written the categories are compared with those before (``core.compare_categories``).
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QHeaderView, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from ..core import keys
from ..core.curation import Curation, CurationComparison, compare_categories
from ..core.errors import AnnotatabilityError

__all__ = ["ComparePanel", "RetrainPanel"]

COLUMNS = ("before", "after", "change")


class ComparePanel(QWidget):
    """Category counts before and after, how many cells moved."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(len(keys.CATEGORIES), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setVerticalHeaderLabels(list(keys.CATEGORIES))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        # the three columns share the dock's width and every row is in view: no scroll bars
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._fit_height()
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addWidget(self.summary)
        self.clear()

    def _fit_height(self) -> None:
        self.table.resizeRowsToContents()
        header = self.table.horizontalHeader().sizeHint().height()
        self.table.setFixedHeight(header + self.table.verticalHeader().length() + 2 * self.table.frameWidth() + 2)

    def clear(self) -> None:
        self.table.clearContents()
        self.summary.setText("After a retraining on the curated labels: what changed.")

    def show_comparison(self, comparison: CurationComparison) -> None:
        table = comparison.table
        for r, cat in enumerate(keys.CATEGORIES):
            for c, col in enumerate(COLUMNS):
                v = int(table.loc[cat, col])
                item = QTableWidgetItem(f"{v:+d}" if col == "change" else str(v))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self._fit_height()
        self.summary.setText(comparison.text())

    def cell(self, category: str, column: str) -> str:
        """The text of one cell of the table (tests read it)."""
        item = self.table.item(list(keys.CATEGORIES).index(category), COLUMNS.index(column))
        return item.text() if item is not None else ""


class RetrainPanel(QWidget):
    """"Retrain on curated labels", the before/after table, colour by change or by curated label.

    ``say(text, error)`` reports to the dock; ``on_done()`` runs when the training has finished
    (whatever its outcome).
    """

    def __init__(self, viewer, say, on_done, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self._say = say
        self._on_done = on_done
        self.worker = None
        self.comparison: CurationComparison | None = None
        self._before = None
        self._pending = None
        self._trainer_connected = None
        self.button = QPushButton("Retrain on curated labels")
        self.button.setToolTip("train on <annotation>_curated with the Annotatability widget's settings, then "
                               "compare the categories with those before")
        self.compare = ComparePanel()
        self.color_change = QPushButton("Colour by change")
        self.color_change.setToolTip("colour the cells by how their category moved (grey: unchanged)")
        self.color_change.setEnabled(False)
        self.color_curated = QPushButton("Colour by curated label")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.button, self.compare, self.color_change, self.color_curated):
            layout.addWidget(w)

    @property
    def running(self) -> bool:
        return self.worker is not None

    def clear(self) -> None:
        self.comparison = None
        self.compare.clear()
        self.color_change.setEnabled(False)

    def _trainer(self):
        from ._widget import training_widget

        trainer = training_widget(self.viewer)
        window = getattr(self.viewer, "window", None)
        if trainer is None and hasattr(window, "add_plugin_dock_widget"):
            _, trainer = window.add_plugin_dock_widget("napari-annotatability", "Annotatability")
        return trainer

    def retrain(self, cells, cur: Curation, *, start: bool = True):
        """Start the training on ``cur.curated_key`` of ``cells``; returns the worker (None: refused)."""
        trainer = self._trainer()
        if trainer is None:
            self._say("Dock the Annotatability widget first: the retraining uses its settings.", True)
            return None
        if self.running or trainer.is_training or cells.training:
            self._say("A training is running: retrain when it has finished (or cancel it in the Annotatability "
                      "widget).", True)
            return None
        if cur.n_edits == 0:
            self._say("No edits yet: relabel some cells first (retraining on an unchanged copy changes nothing).",
                      True)
            return None
        obs = cells.adata.obs
        _ = cur.labels  # the curated column exists
        # record the original label's probability too (core.compare_annotations), when it is a clean column
        clean = obs[cur.label_key].notna().all() and set(cur.original_categories()) <= set(cur.categories)
        try:
            worker = trainer.train_on(cells.layer, cur.curated_key, start=False,
                                      compare_key=cur.label_key if clean else None)
        except ValueError as err:  # the curated column is not a choice of the training widget
            self._say(f"Cannot train on {cur.curated_key!r}: {err}", True)
            return None
        if worker is None:
            return None
        self._before = obs[keys.CATEGORY].copy() if keys.CATEGORY in obs else None
        self.worker = worker
        # the widget's own signals: emitted after it wrote and showed the results (the worker's
        # are queued through the widget's serialised slots, so they may run before it did)
        self._trainer_connected = trainer
        trainer.trained.connect(self._on_trained)
        trainer.training_finished.connect(self._finished)
        self._pending = (cells, cur)
        self.button.setEnabled(False)
        self._say(f"Retraining on {cur.curated_key!r} ({cur.n_edits} edits) ...", False)
        if start:
            worker.start()
        return worker

    def _on_trained(self, _adata) -> None:
        if self._pending is not None:
            self._after(*self._pending)

    def _after(self, cells, cur: Curation) -> None:
        before, self._before = self._before, None
        if before is None:
            self._say("Retrained on the curated labels (there were no categories before to compare with).", False)
            return
        try:
            self.comparison = compare_categories(cells.adata, before, cur)
        except AnnotatabilityError as err:
            self._say(f"Retrained, but cannot compare: {err}", True)
            return
        if cells.is_open():
            cells.show_columns([keys.CATEGORY_BEFORE, keys.CATEGORY_CHANGE])
            cells.model.results_changed.emit(cells)
        self.compare.show_comparison(self.comparison)
        self.color_change.setEnabled(True)
        self._say("Retrained on the curated labels. " + self.comparison.text()
                  + " Start a review again to go through what is still suspicious.", False)

    def _finished(self) -> None:
        trainer, self._trainer_connected = self._trainer_connected, None
        if trainer is not None:
            for signal, slot in ((trainer.trained, self._on_trained), (trainer.training_finished, self._finished)):
                try:
                    signal.disconnect(slot)
                except (TypeError, RuntimeError):
                    pass
        self.worker = None
        self._before = None
        self._pending = None
        self.button.setEnabled(True)
        self._on_done()
