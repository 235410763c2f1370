"""The Annotatability dock widget: pick a layer of cells and a label, train live, colour by the results.

The form and the worker are in ``_training``, the throttled live recolouring in ``_live``, exports
and figures in ``_export``; the layers of cells (spots or a mask) come from the viewer's model
(``_model``).
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget
from superqt import QCollapsible

from ..core import keys
from ..core.errors import AnnotatabilityError, TrainingCancelled
from ..core.rules import describe_categories
from ._dock import DockLink, LayerPicker, on_click, show_colouring
from ._export import EXPORT_FILTERS, ask_export_path, ask_figure_path, export_layer
from ._export import save_figure as _save_figure
from ._layout import compact, open_dock, scrolling
from ._legend import viewer_legend
from ._model import real_viewer
from ._live import DRAW_PROBE_S, LIVE_DUTY, LIVE_SPOTS_PER_SECOND, LiveRecolour, live_interval
from ._serial import SerialSlots
from ._training import FIELDS, TrainingForm, expected_epochs, make_worker

if TYPE_CHECKING:
    import napari

__all__ = ["AnnotatabilityWidget", "training_widget", "live_interval", "LIVE_SPOTS_PER_SECOND", "LIVE_DUTY",
           "DRAW_PROBE_S", "EXPORT_FILTERS", "COLOR_BUTTONS", "DOCKS"]

#: the training widget of each viewer (other docks, e.g. curation, train through it)
_TRAINING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def training_widget(viewer) -> AnnotatabilityWidget | None:
    """The Annotatability training widget docked in ``viewer``, if any."""
    return _TRAINING.get(real_viewer(viewer))


#: colour-by buttons: (text, feature key or None for the annotation itself)
COLOR_BUTTONS = (
    ("Label", None),
    ("Confidence", keys.CONFIDENCE),
    ("Variability", keys.VARIABILITY),
    ("Category", keys.CATEGORY),
    ("Suggested", keys.SUGGESTED_LABEL),
)

#: the other docks of the plugin, opened from buttons: (button text, widget display name)
DOCKS = (
    ("Data map", "Annotatability data map"),
    ("Genes", "Annotatability genes"),
    ("Communities", "Annotatability communities"),
    ("Spot", "Annotatability spot inspector"),
    ("Region", "Annotatability region inspector"),
    ("Curate", "Annotatability curation"),
)


class AnnotatabilityWidget(QWidget):
    """Train on an annotation of a layer of cells and watch the cells recolour every epoch.

    The layer (Points of spots or cells, or Labels of a segmentation) must carry its AnnData in
    ``layer.metadata['adata']`` (layers opened with this plugin's reader or sample data do).
    Results go to that AnnData (the documented keys) and are shown on every layer of it.

    ``trained(adata)`` is emitted once a training's results are written and shown,
    ``training_finished()`` after every training, whatever its outcome (other docks follow these,
    never the worker's own signals, which this widget serialises: see ``_serial``).
    """

    trained = Signal(object)
    training_finished = Signal()

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self.serial: SerialSlots | None = None
        self._pbar = None
        self._n_yielded = 0
        self._started_at = 0.0
        self.live: LiveRecolour | None = None
        self._cancel_requested = False
        self._training_layer = None
        self.link = DockLink(self, napari_viewer)
        self.model = self.link.model
        self.picker = LayerPicker(self.link, "cells")
        self.layer_combo = self.picker.combo
        self.form = TrainingForm(self.layer_combo)
        for name in FIELDS:
            setattr(self, name, getattr(self.form, name))
        self.layer_combo.changed.connect(self._on_layer_changed)

        self.train_button = QPushButton("Train")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        on_click(self.train_button, self.train)
        on_click(self.cancel_button, self.cancel)
        self.status = QLabel("Pick a layer of cells and the annotation to examine, then press Train.")
        self.status.setWordWrap(True)

        self.color_buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        for i, (text, key) in enumerate(COLOR_BUTTONS):
            btn = QPushButton(text)
            on_click(btn, self.show_feature, key)
            grid.addWidget(btn, i // 3, i % 3)
            self.color_buttons[text] = btn
        self.switch_button = QPushButton("Mask / points")
        self.switch_button.setToolTip("show a mask's cells as centroid points, or the points' mask again")
        on_click(self.switch_button, self.toggle_points)
        grid.addWidget(self.switch_button, len(COLOR_BUTTONS) // 3, len(COLOR_BUTTONS) % 3)

        self.dock_buttons: dict[str, QPushButton] = {}
        docks = QGridLayout()
        for i, (text, name) in enumerate(DOCKS):
            btn = QPushButton(text)
            btn.setToolTip(f"Open the {name} dock")
            on_click(btn, self.open_dock, name)
            docks.addWidget(btn, i // 3, i % 3)
            self.dock_buttons[text] = btn

        self.export_button = QPushButton("Export cells...")
        self.export_button.setToolTip("The AnnData with every result (.h5ad), a per-cell table (.csv), cell shapes "
                                      "with their values (.geojson: QuPath, geopandas) or cell groups "
                                      "(.groups.csv: Xenium Explorer)")
        on_click(self.export_button, self._ask_export_path)
        self.figure_button = QPushButton("Save figure...")
        self.figure_button.setToolTip("the canvas as it is now, as a PNG")
        on_click(self.figure_button, self._ask_figure_path)

        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        self.advanced = QCollapsible("Advanced")
        self.advanced.addWidget(self.form.advanced.native)
        self.advanced.setDuration(0)  # no animation: it fits or scrolls at once
        layout = QVBoxLayout(scrolling(self))  # scrolls rather than growing the window past the screen
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.form.container.native)
        layout.addWidget(self.advanced)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Colour cells by:"))
        layout.addLayout(grid)
        layout.addWidget(QLabel("Inspect:"))
        layout.addLayout(docks)
        saving = QHBoxLayout()
        saving.addWidget(self.export_button)
        saving.addWidget(self.figure_button)
        layout.addLayout(saving)
        layout.addStretch(1)

        self.link.connect(self.model.layers_changed, self._reset_choices)
        self.link.connect(self.model.results_changed, self._on_results)
        self._reset_choices()
        _TRAINING[real_viewer(self.viewer)] = self
        self.link.on_close(self._closed)
        compact(self)

    def _closed(self) -> None:
        """Closed: other docks no longer train through this widget (a running training goes on)."""
        if _TRAINING.get(real_viewer(self.viewer)) is self:
            del _TRAINING[real_viewer(self.viewer)]

    # -- choices ---------------------------------------------------------------------------
    @property
    def cell(self):
        """The picked layer of cells (``_cells.CellLayer``), or None."""
        return self.picker.cell

    def _spot_layers(self, _widget=None) -> list:
        """The layers of cells the widget offers (the model's: plain Points without an AnnData are not)."""
        return self.model.layers()

    def _reset_choices(self, *_a) -> None:
        self.picker.refresh()
        self._on_layer_changed()

    def _on_layer_changed(self, _value=None) -> None:
        self.form.pick_label(self.label_combo.value)
        self._update_color_buttons()
        self.form.show_recipe()

    def _show_recipe(self) -> None:
        self.form.show_recipe()

    def _on_results(self, cell) -> None:
        if cell.layer is self.layer_combo.value:
            self._update_color_buttons()

    def _update_color_buttons(self) -> None:
        cell = self.cell
        obs = cell.adata.obs if cell is not None else {}
        for text, key in COLOR_BUTTONS:
            ok = cell is not None and (key in obs if key else self.label_combo.value is not None)
            self.color_buttons[text].setEnabled(bool(ok) and self.worker is None)
        self.switch_button.setEnabled(cell is not None and (cell.kind == "cells" or self.model.twin(cell) is not None))

    # -- training --------------------------------------------------------------------------
    @property
    def is_training(self) -> bool:
        return self.worker is not None

    @property
    def live_recolours(self) -> int:
        """How many epochs of the last training recoloured the cells (benchmarks read it)."""
        return self.live.count if self.live is not None else 0

    @property
    def live_costs(self) -> list[float]:
        """Seconds each live recolour took, redraw included."""
        return self.live.costs if self.live is not None else []

    def train_on(self, layer, label_key: str, *, start: bool = True, compare_key: str | None = None):
        """Train on ``layer``'s annotation ``label_key`` with the form's settings; returns the worker.

        For other docks (the curation dock retrains on ``<key>_curated`` this way).  None, with
        nothing changed, while a training runs.  ``compare_key`` also records every cell's
        probability of that second annotation (see ``core.compare_annotations``).
        """
        if self.is_training:
            return None
        self._reset_choices()
        self.layer_combo.value = layer
        self.label_combo.reset_choices()
        self.label_combo.value = label_key
        return self.train(start=start, compare_key=compare_key)

    def train(self, *, start: bool = True, compare_key: str | None = None):
        """Train in a worker thread; returns the worker (None if no layer/annotation is picked).

        With ``start=False`` the caller connects to the worker's signals and calls
        ``worker.start()`` itself (tests do, inside ``qtbot.waitSignal(worker.finished)``).
        """
        from napari.utils.notifications import show_error

        if self.is_training:
            return None
        cell, label = self.cell, self.label_combo.value
        if cell is None or label is None:
            show_error("Annotatability: pick a layer of cells and an annotation column first")
            return None
        self._cancel_requested = False
        worker = make_worker(cell.adata, label, self.form.settings(), lambda: self._cancel_requested,
                             compare_key=compare_key)
        # every slot through one queue: napari's progress bar (and notifications) process events
        # inside a call, which would deliver the next signal inside this one (see _serial)
        self.serial = serial = SerialSlots()
        self._n_yielded = 0
        worker.yielded.connect(self._on_yield)
        worker.returned.connect(serial.wrap(self._on_result))
        worker.errored.connect(serial.wrap(self._on_error))
        worker.finished.connect(serial.wrap(self._on_finished))
        self.worker = worker
        self._open_progress(cell.adata, label)
        self._started_at = time.perf_counter()
        self._training_layer = cell.layer
        self.live = LiveRecolour(self.model.sharing(cell.adata), on_first=self._show_live_colorbar)
        for other in self.live.cells:
            other.layer.metadata["training"] = True  # writers refuse to export a half result
        self._set_running(True)
        self.status.setText(f"Training on {label!r}: starting ...")
        if start:
            worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the running training to stop: it stops before its next batch.

        The core polls the flag between batches (``should_stop``) and raises
        ``TrainingCancelled``, which is quicker than the worker's ``quit()`` (checked only
        between epochs) and leaves the AnnData untouched.
        """
        if self.worker is None:
            return
        self._cancel_requested = True
        self.status.setText("Cancelling ...")

    def _set_running(self, running: bool) -> None:
        self.train_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.form.enabled = not running
        if not running:
            self.epochs.enabled = self.lr.enabled = not bool(self.adaptive.value)
        self._update_color_buttons()

    def _open_progress(self, adata, label: str) -> None:
        """napari's progress bar (its activity dock) for this training."""
        from napari.utils import progress

        self._close_progress()
        total = expected_epochs(adata, self.form.settings())
        self._pbar = progress(total=total, desc=f"Annotatability: {label}")

    def _close_progress(self) -> None:
        if self._pbar is not None:
            pbar, self._pbar = self._pbar, None
            pbar.close()

    def _on_yield(self, p) -> None:
        """A progress report from the worker: counted now, shown once the slot before it is done."""
        self._n_yielded += 1
        if self.serial is not None:
            self.serial.call(self._on_progress, (p,), coalesce=True)

    def _on_progress(self, p) -> None:
        pbar = self._pbar
        if pbar is not None:
            if self._n_yielded > pbar.total > 0:
                pbar.total = 0  # more epochs than foreseen (a retry): indeterminate from here
            pbar.update(max(0, self._n_yielded - pbar.n))
        text = {"training": "Training", "cross-fitting": "Out-of-sample check", "calibrating": "Calibrating cut-offs",
                "correcting": "Label correction"}
        loss = f", loss {p.loss:.3f}" if p.loss == p.loss else ""
        self.status.setText(f"{text.get(p.stage, p.stage)}: epoch {p.epoch}/{p.n_epochs}{loss}")
        if p.stage == "training" and p.confidence is not None and self.live is not None:
            self.live.update(p.confidence)

    def _show_live_colorbar(self) -> None:
        """The legend names what the cells show while training (napari's colorbar has no title)."""
        from ._colors import CONTINUOUS_RANGE, COLORMAPS
        from ._legend import show_colorbar

        key = keys.CONFIDENCE
        show_colorbar(self.viewer, f"{key} (training, live)", COLORMAPS.get(key, "viridis"),
                      CONTINUOUS_RANGE[key])

    def _cells_trained(self) -> list:
        return [c for c in (self.live.cells if self.live is not None else []) if c.is_open()]

    def _on_result(self, result) -> None:
        layer = self._training_layer
        adata = layer.metadata["adata"]
        result.write(adata)
        for cell in self.live.cells:
            cell.layer.metadata["training"] = False  # the results are whole: docks may read them now
        self.model.notify_results(adata)
        seconds = time.perf_counter() - self._started_at  # every stage, not the first training only
        if not self._cells_trained():  # closed while training: the AnnData keeps the results
            self.status.setText(f"Done in {seconds:.1f} s; the layer was closed, so nothing "
                                "is shown (the results are in its AnnData).")
            self.trained.emit(adata)
            return
        counts = adata.obs[keys.CATEGORY].value_counts() if keys.CATEGORY in adata.obs else None
        if counts is not None:
            rule = (result.thresholds or {}).get("rule", "paper")
            self.status.setText(
                f"Done in {seconds:.1f} s, {rule} rule: "
                + ", ".join(f"{counts.get(c, 0)} {c}" for c in keys.CATEGORIES)
            )
            try:  # what each category means under that rule, on hover
                self.status.setToolTip("\n".join(describe_categories(result.thresholds, counts.to_dict()).values()))
            except KeyError:
                self.status.setToolTip("")
            self._show_on_trained(keys.CATEGORY)
        else:
            self.status.setText(f"Done in {seconds:.1f} s.")
            self._show_on_trained(keys.CONFIDENCE)
        self.trained.emit(adata)

    def _show_on_trained(self, key) -> None:
        """Colour every open layer of the trained AnnData by ``key`` (the trained one last)."""
        cells = self._cells_trained()
        for cell in sorted(cells, key=lambda c: c.layer is self._training_layer):
            self.show_feature(key, layer=cell.layer)

    def _on_error(self, exc: Exception) -> None:
        from napari.utils.notifications import show_error

        if isinstance(exc, TrainingCancelled):
            return
        msg = str(exc) if isinstance(exc, (AnnotatabilityError, ValueError, KeyError)) else f"{type(exc).__name__}: {exc}"
        self.status.setText(f"Training failed: {msg}")
        show_error(f"Annotatability: {msg}")

    def _on_finished(self) -> None:
        cancelled = self._cancel_requested
        self.worker = None
        if self.serial is not None:
            self.serial.close()  # nothing of this worker runs after this
        self._close_progress()
        for cell in self.live.cells if self.live is not None else []:
            cell.layer.metadata["training"] = False
        self._set_running(False)
        cells = self._cells_trained()
        if cancelled and cells:
            # drop the live, unfinished scores: the layers show what the AnnData holds
            adata = cells[0].adata
            for cell in cells:
                cell.sync()
            for cell in cells:
                key = cell.layer.metadata.get("color_by")
                self.show_feature(key if key in adata.obs else None, layer=cell.layer)
            self.status.setText("Cancelled: nothing was written.")
        self.training_finished.emit()

    def open_dock(self, name: str):
        """Open (or show again) one of the plugin's docks, as a tab of the Inspect group; its widget."""
        return open_dock(self.viewer, name, opener=self)

    # -- mask <-> points -------------------------------------------------------------------------
    def toggle_points(self, layer=None):
        """Show the picked mask's cells as centroid points (or the points' mask again); the layer shown."""
        cell = self.model.get(layer) if layer is not None else self.cell
        if cell is None:
            return None
        try:
            other = self.model.toggle_points(cell)
        except ValueError as err:
            from napari.utils.notifications import show_error

            show_error(f"Annotatability: {err}")
            return None
        self.picker.refresh()
        self.layer_combo.value = other.layer
        return other.layer

    # -- export and figure ----------------------------------------------------------------------
    def _ask_export_path(self) -> None:
        path = ask_export_path(self, self.layer_combo.value)
        if path:
            self.export(path)

    def export(self, path) -> str | None:
        """Export the picked layer by the file's extension (.h5ad, .csv, .geojson, .groups.csv)."""
        return export_layer(self.layer_combo.value, path)

    def _ask_figure_path(self) -> None:
        path = ask_figure_path(self)
        if path:
            self.save_figure(path)

    def save_figure(self, path) -> str | None:
        """Save the current view of the canvas as a PNG (atomically); refused while training."""
        from napari.utils.notifications import show_error

        if self.is_training:
            show_error("Annotatability: a training is running; save the figure when it has finished")
            return None
        return _save_figure(self.viewer, path)

    # -- colouring -------------------------------------------------------------------------
    def show_feature(self, key: str | None, layer=None) -> None:
        """Colour the cells by ``key`` (None: the annotation); categorical keys get a legend."""
        cell = self.model.get(layer or self.layer_combo.value)
        if cell is None:
            return
        adata = cell.adata
        if key is None:
            key = self.label_combo.value or adata.uns.get(keys.UNS, {}).get("label_key")
            if key is None:
                return
        show_colouring(self.viewer, cell, key, cell.color_by(key))
        self.viewer.layers.selection.active = cell.layer

    @property
    def legend(self):
        """The viewer's shared legend (see ``_legend.show_legend``)."""
        return viewer_legend(self.viewer)
