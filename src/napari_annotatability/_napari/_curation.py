"""The curation dock: review suspicious cells one by one, relabel, retrain, compare.

A thin shell over :mod:`napari_annotatability.core.curation` (edits, undo/redo, the log, the
review queue, the comparison) and over a layer of cells of the viewer's model (``_model``: spots
or a mask's cells alike -- select, centre, neighbours, the cells inside drawn shapes).  Edits go to
``obs[f"{key}_curated"]``, never to the annotation itself; the log lives in
``uns['annotatability_curation']``, so saving the layer (.h5ad) keeps both.  The panels are laid
out in ``_curation_ui``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox
from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import (
    QGridLayout,
    QLabel,
    QShortcut,
    QWidget,
)

from ..core import keys
from ..core.curation import Curation, ReviewQueue
from ..core.errors import AnnotatabilityError
from ..core.labels import annotation_columns
from ..core.quality import describe_quality
from ._cells import DEFAULT_SPOTS_ACROSS, CellLayer
from ._dock import DockLink, LayerPicker, refresh_on_open
from ._curation_keys import DOCK_KEYS, bind_viewer_keys
from ._curation_ui import GROUP_CHOICES, QUEUE_CHOICES, build_panels
from ._layout import compact, dock_of, open_dock, place_when_docked
from ._legend import show_legend

if TYPE_CHECKING:
    import napari

__all__ = ["CurationWidget", "QUEUE_CHOICES", "GROUP_CHOICES", "DOCK_KEYS"]

#: names of earlier versions (spots only) still understood
_ALIASES = {"selected spots": "selected cells"}


class CurationWidget(QWidget):
    """Review suspicious cells one by one, relabel one or many, undo, retrain, compare."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.queue: ReviewQueue | None = None
        self.cells: CellLayer | None = None
        self.link = DockLink(self, napari_viewer)
        self.model = self.link.model
        self._curations: dict[tuple[int, str], Curation] = {}
        self.spots_across = DEFAULT_SPOTS_ACROSS

        self.picker = LayerPicker(self.link, "cells")
        self.layer_combo = self.picker.combo
        self.key_combo = ComboBox(label="annotation", choices=self._keys, nullable=True)
        self.layer_combo.changed.connect(self._on_layer)
        self.key_combo.changed.connect(lambda _v: self._reset_queue())
        refresh_on_open(self.key_combo, self.key_combo.reset_choices)
        top = QGridLayout()
        top.addWidget(QLabel("cells"), 0, 0)
        top.addWidget(self.layer_combo.native, 0, 1)
        top.addWidget(QLabel("annotation"), 1, 0)
        top.addWidget(self.key_combo.native, 1, 1)
        top.setColumnStretch(1, 1)

        build_panels(self, top)

        self.shortcuts: dict[str, QShortcut] = {}
        for key, method in DOCK_KEYS.items():
            self._shortcut(key, getattr(self, method))
        for k in range(1, 10):
            self._shortcut(str(k), lambda k=k: self.relabel_current(index=k - 1))
        self.viewer_keys = bind_viewer_keys(self.viewer, self, self.link)

        self._run = None  # the training run (its uns record) the open review was built from
        self.link.connect(self.model.layers_changed, self._on_layers)
        self.link.connect(self.model.results_changed, self._on_results)
        self._on_layers()
        compact(self)
        place_when_docked(self, napari_viewer)  # the Plugins menu too: a tab of the Inspect group

    # -- keys -----------------------------------------------------------------------------------
    def _shortcut(self, key: str, slot) -> None:
        sc = QShortcut(QKeySequence(key), self)
        sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        sc.activated.connect(slot)
        self.shortcuts[key] = sc

    # -- choices --------------------------------------------------------------------------------
    def _keys(self, _w=None) -> list[str]:
        """The annotations (the engine's rule, ``core.labels``), less the curated copies made here."""
        layer = self.layer_combo.value if hasattr(self, "layer_combo") else None
        if layer is None:
            return []
        return annotation_columns(layer.metadata["adata"].obs, exclude_curated=True)

    def _on_layers(self, *_a) -> None:
        was = self.cells
        self.picker.refresh()
        self._on_layer()
        if was is not None and not was.is_open():
            self._say(f"The layer {was.name!r} was closed: its AnnData keeps the curated labels and the edit log "
                      "(save it from Python, or re-open it). Pick another layer to go on.")

    def _on_layer(self, _value=None) -> None:
        layer = self.layer_combo.value
        if self.cells is not None and self.cells.layer is layer:
            return
        self.cells = self.model.get(layer)
        previous = self.key_combo.value
        self.key_combo.reset_choices()
        if layer is not None:
            info = layer.metadata["adata"].uns.get(keys.UNS, {})
            trained = info.get("label_key") if isinstance(info, dict) else None
            if trained and trained.endswith(keys.CURATED_SUFFIX):
                trained = trained[: -len(keys.CURATED_SUFFIX)]
            options = [c for c in self.key_combo.choices if c is not None]
            for key in (previous, trained, "label", *options[:1]):
                if key in options:
                    self.key_combo.value = key
                    break
        self._reset_queue()

    def _on_results(self, cell) -> None:
        """New results on the curated table: a new training makes the open review stale."""
        if self.cells is None or cell.adata is not self.cells.adata or cell.training:
            return
        run = id(cell.adata.uns.get(keys.UNS))
        if run != self._run:
            self._run = run
            self.queue = None  # built from the categories before; the retrain panel keeps its comparison
        self._refresh_labels()
        self._update()

    def _reset_queue(self) -> None:
        self.queue = None
        self.retraining.clear()
        self._refresh_labels()
        self._update()

    # -- state ----------------------------------------------------------------------------------
    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        if error:
            from napari.utils.notifications import show_error

            show_error(f"Annotatability curation: {text}")

    def _ready(self) -> tuple[CellLayer, Curation] | None:
        """The layer of cells and its curation, or None (and a message saying why)."""
        cells = self.cells
        if cells is None or not cells.is_open():
            name = f" {cells.name!r}" if cells is not None else ""
            self._say(f"The layer of cells{name} is closed or none is picked: pick a layer of cells first "
                      "(nothing was lost: the AnnData keeps the curated labels and the log).", error=True)
            return None
        key = self.key_combo.value
        if key is None:
            self._say("Pick the annotation to curate.", error=True)
            return None
        ident = (id(cells.adata), key)
        if ident not in self._curations:
            try:
                self._curations[ident] = Curation(cells.adata, key)
            except AnnotatabilityError as err:
                self._say(str(err), error=True)
                return None
        return cells, self._curations[ident]

    @property
    def curation(self) -> Curation | None:
        ready = self._ready()
        return ready[1] if ready else None

    def _editable(self, cells) -> bool:
        if cells.training:
            self._say("A training is running on this layer: edits wait until it has finished (it reads the labels "
                      "in several stages).", error=True)
            return False
        return True

    def _refresh_labels(self) -> None:
        current = self.label_box.currentText()
        self.label_box.clear()
        layer, key = self.layer_combo.value, self.key_combo.value
        if layer is None or key is None:
            return
        adata = layer.metadata["adata"]
        col = adata.obs[keys.curated_key(key)] if keys.curated_key(key) in adata.obs else adata.obs[key]
        cats = [str(c) for c in col.cat.categories] if hasattr(col, "cat") else sorted(col.dropna().astype(str).unique())
        self.label_box.addItems(cats)
        if current in cats:
            self.label_box.setCurrentText(current)

    def _update(self) -> None:
        q, cells = self.queue, self.cells
        ident = (id(cells.adata), self.key_combo.value) if cells is not None else None
        cur = self._curations.get(ident)
        self.edits.setText(f"{cur.n_edits} edits" if cur is not None else "no edits")
        if q is None or cells is None:
            scored = cells is not None and keys.CATEGORY in cells.adata.obs
            self.progress.setText("Pick which cells to review and press Start review." if scored else
                                  "Train first (Annotatability widget), then start a review of the suspicious cells.")
            self.info.setText("")
            return
        if not len(q):
            self.progress.setText("The queue is empty.")
            self.info.setText("")
            return
        self.progress.setText(f"{q.progress()} · cell {q.position + 1} of {len(q)}")
        self.info.setText(self._describe(cells, cur, q.current))
        # as tall as its wrapped lines need (grown only: no relayout at every step of the review)
        need = self.info.heightForWidth(max(self.info.width(), 1))
        if need > self.info.minimumHeight():
            self.info.setMinimumHeight(need)
            self.info.updateGeometry()

    def _describe(self, cells, cur: Curation | None, cell: int) -> str:
        adata = cells.adata
        obs = adata.obs
        key = self.key_combo.value

        def value(col, fmt="{}"):
            if col not in obs:
                return "—"
            v = obs[col].iloc[cell]
            return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else fmt.format(v)

        now = value(cur.curated_key) if cur is not None and cur.curated_key in obs else value(key)
        lines = [f"<b>{adata.obs_names[cell]}</b> &nbsp; {value(keys.CATEGORY)}",
                 f"label quality {describe_quality(adata, cell)}",
                 f"label: <b>{now}</b>" + (f" (originally {value(key)})" if now != value(key) else ""),
                 f"suggested: <b>{value(keys.SUGGESTED_LABEL)}</b> (p {value(keys.SUGGESTED_PROB, '{:.2f}')})"]
        col = cur.curated_key if cur is not None and cur.curated_key in obs else key
        near = obs[col].iloc[cells.neighbours(cell)].astype(str).value_counts()
        lines.append("neighbours: " + ", ".join(f"{name} {n}" for name, n in near.items()))
        return "<br>".join(lines)

    # -- review ---------------------------------------------------------------------------------
    def start_review(self, source: str | None = None) -> ReviewQueue | None:
        """Build the queue (``source``: a key of ``QUEUE_CHOICES`` or its value) and show its first cell."""
        ready = self._ready()
        if ready is None:
            return None
        cells, _ = ready
        source = source or self.queue_combo.currentText()
        source = QUEUE_CHOICES.get(source, "selection" if source == "selected spots" else source)
        try:
            if source == "selection":
                picked = cells.selection()
                if not picked.size:
                    self._say("No cells are selected: select some (select mode, a click on a mask, the data map's "
                              "lasso) first.", error=True)
                    return None
                self.queue = ReviewQueue.build(cells.adata, picked)
            else:
                self.queue = ReviewQueue.build(cells.adata, source)
            self._run = id(cells.adata.uns.get(keys.UNS))
            if cells.n != cells.adata.n_obs:  # a layer of one section: review the cells it shows
                q = self.queue
                self.queue = ReviewQueue(q.cells[cells.positions(q.cells) >= 0], description=q.description)
        except AnnotatabilityError as err:
            self._say(str(err), error=True)
            return None
        if not len(self.queue):
            self._say(f"No {source} cells to review.")
            self._update()
            return self.queue
        self._open_inspector()
        self._say(f"Reviewing {len(self.queue)} cells: A accepts the suggestion, S keeps the label, 1-9 give "
                  "the n-th label, N / P move on and back.")
        self._show()
        return self.queue

    def _open_inspector(self) -> None:
        try:  # a tab of the Inspect group, then back to this dock: the review goes on here
            open_dock(self.viewer, "Annotatability spot inspector", opener=self)
        except Exception:  # noqa: BLE001 - the review works without it
            return
        dock = dock_of(self)
        if dock is not None:
            dock.raise_()

    def _show(self) -> None:
        """Centre on the queue's current cell, select it (the inspector follows), describe it."""
        cells, q = self.cells, self.queue
        if q is None or q.current is None or cells is None:
            return
        if not cells.is_open():
            self._ready()  # says the layer is closed
            return
        cells.centre(q.current, self.spots_across)
        cells.select([q.current])
        self._update()

    def _queue_ready(self) -> bool:
        if self._ready() is None:
            return False
        if self.queue is None or not len(self.queue):
            self._say("Start a review first (no cells are queued).", error=True)
            return False
        return True

    def next_cell(self) -> int | None:
        if not self._queue_ready():
            return None
        if self.queue.next() is None:
            self._say("That was the last cell of the queue.")
        self._show()
        return self.queue.current

    def previous_cell(self) -> int | None:
        if not self._queue_ready():
            return None
        if self.queue.previous() is None:
            self._say("This is the first cell of the queue.")
        self._show()
        return self.queue.current

    def _advance(self) -> None:
        q = self.queue
        q.mark_reviewed()
        if q.next_unreviewed() is None:
            self._say(f"All {len(q)} cells reviewed. Retrain on the curated labels to see what changed.")
        self._show()

    def accept(self) -> int:
        """Give the cell under review its suggested label, then go to the next cell not reviewed."""
        return self._edit_current(lambda cur, cell: cur.accept_suggestions([cell]))

    def skip(self) -> None:
        """Keep the cell's label (it counts as reviewed) and go on."""
        if self._queue_ready():
            self._advance()

    def relabel_current(self, label: str | None = None, index: int | None = None) -> int:
        """Give the cell under review ``label`` (or the label box's, or the ``index``-th category)."""
        def run(cur, cell):
            lab = label
            if index is not None:
                cats = cur.categories
                if index >= len(cats):
                    raise AnnotatabilityError(f"there is no label {index + 1}: the annotation has {len(cats)}")
                lab = cats[index]
            lab = self.label_box.currentText() if lab is None else lab
            return cur.relabel([cell], lab, source="manual", allow_new=self.allow_new.isChecked())

        return self._edit_current(run)

    def _edit_current(self, edit) -> int:
        if not self._queue_ready():
            return 0
        cells, cur = self._ready()
        if not self._editable(cells):
            return 0
        try:
            n = edit(cur, self.queue.current)
        except AnnotatabilityError as err:
            self._say(str(err), error=True)
            return 0
        self._after_edit(cells, cur)
        self._advance()
        return n

    def _after_edit(self, cells, cur: Curation) -> None:
        cells.show_columns([cur.curated_key])  # recolours the layer if it shows the curated labels
        for other in self.model.sharing(cells.adata):
            if other is not cells:
                other.show_columns([cur.curated_key])
            self.model.results_changed.emit(other)
        if self.label_box.count() != len(cur.categories):
            self._refresh_labels()
        self._update()

    # -- many at once ---------------------------------------------------------------------------
    def group(self, which: str | None = None) -> np.ndarray:
        """The cells of a group of ``GROUP_CHOICES`` (default: the one chosen in the dock)."""
        cells = self.cells
        which = which or self.group_combo.currentText()
        which = _ALIASES.get(which, which)
        if which == "selected cells":
            return cells.selection()
        if which == "inside drawn shapes":
            return cells.in_shapes()
        if which == "review queue":
            return self.queue.cells if self.queue is not None else np.zeros(0, np.int64)
        obs = cells.adata.obs
        if keys.CATEGORY not in obs:
            return np.zeros(0, np.int64)
        return np.flatnonzero((obs[keys.CATEGORY].astype(str) == which).to_numpy())

    def relabel_group(self, which: str | None = None, label: str | None = None, suggested: bool = False) -> int:
        """Give every cell of a group ``label`` (or each its suggestion) in one action (one undo)."""
        ready = self._ready()
        if ready is None:
            return 0
        cells, cur = ready
        if not self._editable(cells):
            return 0
        which = which or self.group_combo.currentText()
        idx = self.group(which)
        if not idx.size:
            self._say(f"No cells in '{which}': select cells (select mode, a click on a mask, the data map's lasso) "
                      "or draw a shape.", error=True)
            return 0
        try:
            if suggested:
                n = cur.accept_suggestions(idx)
            else:
                lab = self.label_box.currentText() if label is None else label
                n = cur.relabel(idx, lab, source="bulk", allow_new=self.allow_new.isChecked())
        except AnnotatabilityError as err:
            self._say(str(err), error=True)
            return 0
        self._after_edit(cells, cur)
        self._say(f"Relabelled {n} of {idx.size} cells ({which}); Undo takes them all back.")
        return n

    # -- history --------------------------------------------------------------------------------
    def undo(self) -> np.ndarray | None:
        return self._history("undo")

    def redo(self) -> np.ndarray | None:
        return self._history("redo")

    def _history(self, what: str) -> np.ndarray | None:
        ready = self._ready()
        if ready is None:
            return None
        cells, cur = ready
        if not self._editable(cells):
            return None
        try:
            changed = getattr(cur, what)()
        except AnnotatabilityError as err:
            msg = str(err)
            self._say(msg[:1].upper() + msg[1:], error=True)
            return None
        self._after_edit(cells, cur)
        q = self.queue
        if q is not None and changed.size == 1 and q.find(changed[0]) is not None:
            q.goto(q.find(changed[0]))  # back to the cell whose edit was taken back
            self._show()
        self._say(f"{what.capitalize()}: {changed.size} cell{'s' if changed.size != 1 else ''}.")
        return changed

    def _ask_csv_path(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self, "Export edits", "edits.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path) -> str | None:
        """Write the edit log as CSV (cell, original, previous, curated, source, time)."""
        cur = self.curation
        if cur is None:
            return None
        try:
            return cur.write_csv(path)
        except AnnotatabilityError as err:
            self._say(f"Edits not saved: {err}", error=True)
            return None

    # -- retrain and compare --------------------------------------------------------------------
    @property
    def is_retraining(self) -> bool:
        return self.retraining.running

    @property
    def comparison(self):
        """What the last retraining changed (``core.curation.CurationComparison``), or None."""
        return self.retraining.comparison

    def retrain(self, *, start: bool = True):
        """Train on ``<key>_curated`` through the Annotatability widget; returns the worker.

        Refused (None, a message) while a training runs, without a layer, or without edits.
        When it finishes, the categories are compared with those before (``compare_categories``).
        """
        ready = self._ready()
        return self.retraining.retrain(*ready, start=start) if ready is not None else None

    def _retrain_finished(self) -> None:
        self.queue = None  # the categories changed: a new review starts from them
        self._update()

    def color(self, key: str | None) -> None:
        """Colour the cells by ``key`` (None: the curated labels), with a legend."""
        ready = self._ready()
        if ready is None:
            return
        cells, cur = ready
        key = key or cur.curated_key
        _ = cur.labels
        cells.show_columns([cur.curated_key])
        if key not in cells.adata.obs:
            self._say("Retrain on the curated labels first: there is no change to show yet.", error=True)
            return
        colors = cells.color_by(key)
        counts = cells.counts(key)
        if key == keys.CATEGORY_CHANGE:
            colors = {k: v for k, v in colors.items() if counts.get(k, 0)}
        show_legend(self.viewer, key, colors, counts)

