"""The Annotatability dock widget: pick spots and a label, train live, colour by the results."""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING

import pandas as pd
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, SpinBox
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..core import keys
from ..core.errors import AnnotatabilityError, TrainingCancelled
from ..core.rules import RULES, describe_categories
from ._colors import color_by, is_categorical, sync_features
from ._selection import spot_layers
from ._legend import hide_legend, show_legend, viewer_legend

if TYPE_CHECKING:
    import napari

__all__ = ["AnnotatabilityWidget", "training_widget"]

#: the training widget of each viewer (other docks, e.g. curation, train through it)
_TRAINING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def training_widget(viewer) -> AnnotatabilityWidget | None:
    """The Annotatability training widget docked in ``viewer``, if any."""
    return _TRAINING.get(viewer)

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

#: live recolouring during training: at most once per (spots / LIVE_SPOTS_PER_SECOND) seconds, and
#: at most LIVE_DUTY of the time (measured), so that large sections keep the viewer responsive.
#: Every draw of 10^5 spots costs ~0.4 s under software OpenGL (benchmarks/bench_viewer.py).
LIVE_SPOTS_PER_SECOND = 100_000
LIVE_DUTY = 0.25
#: delay of the timer that finds out when the redraw after a live recolour has finished
DRAW_PROBE_S = 0.04


def live_interval(n_spots: int, last_cost: float = 0.0) -> float:
    """Seconds to wait between two live recolours of a layer of ``n_spots``."""
    return max(n_spots / LIVE_SPOTS_PER_SECOND if n_spots > 20_000 else 0.0, last_cost / LIVE_DUTY)


#: export file filters -> the extension each adds
EXPORT_FILTERS = {
    "AnnData with all results (*.h5ad)": ".h5ad",
    "Spots table (*.csv)": ".csv",
    "Spots GeoJSON (*.geojson)": ".geojson",
}


def _devices() -> list[str]:
    import torch

    out = ["auto", "cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


class AnnotatabilityWidget(QWidget):
    """Train on an annotation of a spots layer and watch the spots recolour every epoch.

    The spots layer must carry its AnnData in ``layer.metadata['adata']`` (layers opened with
    this plugin's reader or sample data do).  Results go to that AnnData (the documented keys)
    and are mirrored in ``layer.features``.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self.live_recolours = 0
        self.live_costs: list[float] = []
        self._cancel_requested = False
        self._training_layer = None

        self.layer_combo = ComboBox(label="spots", choices=self._spot_layers, nullable=True)
        self.label_combo = ComboBox(label="annotation", choices=self._label_choices, nullable=True)
        # the adaptive recipe derives epochs (a step budget) and the learning rate (from the input
        # scale) from the data (core.recipes); the fields then show what it chose, greyed out
        self.adaptive = CheckBox(text="adaptive recipe (epochs and learning rate from the data)", value=True)
        self.epochs = SpinBox(label="epochs", value=100, min=1, max=5000)
        self.lr = FloatSpinBox(label="learning rate", value=1e-3, min=1e-5, max=1.0, step=1e-4)
        self.epochs.tooltip = "with the adaptive recipe: about 1000 optimisation steps (20 to 1000 epochs)"
        self.lr.tooltip = "with the adaptive recipe: 1 / mean squared norm of the cells, within [1e-3, 1e-2]"
        self.batch_size = SpinBox(label="batch size", value=256, min=8, max=65536, step=32)
        self.depth = ComboBox(label="depth", choices=[3, 4, 5], value=3)
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.n_seeds = SpinBox(label="seeds (ensemble)", value=1, min=1, max=20)
        self.n_seeds.tooltip = ("train this many networks (seed, seed + 100, ...) and average their scores: "
                                "steadier scores on small datasets, n times the training time")
        self.device = ComboBox(label="device", choices=_devices(), value="auto")
        self.calibrate = CheckBox(text="calibrate cut-offs by noise injection", value=True)
        self.noise = FloatSpinBox(label="noise fraction", value=0.1, min=0.01, max=0.5, step=0.01)
        self.rule = ComboBox(label="category rule", choices=list(RULES), value=RULES[0])
        self.rule.tooltip = ("calibrated: erroneous = label quality at or below the calibrated cut-off, ambiguous = "
                             "the network cannot settle the spot; paper: the published rule on confidence and "
                             "variability")
        self.form = Container(widgets=[
            self.layer_combo, self.label_combo, self.adaptive, self.epochs, self.lr, self.batch_size, self.depth,
            self.seed, self.n_seeds, self.device, self.calibrate, self.noise, self.rule,
        ])
        self.lr.native.setDecimals(5)
        self.adaptive.changed.connect(lambda _v: self._show_recipe())
        self.batch_size.changed.connect(lambda _v: self._show_recipe())
        self.layer_combo.changed.connect(self._on_layer_changed)
        self.calibrate.changed.connect(lambda v: setattr(self.noise, "enabled", bool(v)))

        self.train_button = QPushButton("Train")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.train_button.clicked.connect(self.train)
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel("Pick a spots layer and the annotation to examine, then press Train.")
        self.status.setWordWrap(True)

        self.color_buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        for i, (text, key) in enumerate(COLOR_BUTTONS):
            btn = QPushButton(text)
            btn.clicked.connect(lambda _=False, k=key: self.show_feature(k))
            grid.addWidget(btn, i // 3, i % 3)
            self.color_buttons[text] = btn

        self.dock_buttons: dict[str, QPushButton] = {}
        docks = QGridLayout()
        for i, (text, name) in enumerate(DOCKS):
            btn = QPushButton(text)
            btn.setToolTip(f"Open the {name} dock")
            btn.clicked.connect(lambda _=False, n=name: self.open_dock(n))
            docks.addWidget(btn, i // 3, i % 3)
            self.dock_buttons[text] = btn

        self.export_button = QPushButton("Export spots...")
        self.export_button.setToolTip("The AnnData with every result (.h5ad), a per-spot table (.csv) "
                                      "or spot shapes with their values (.geojson: QuPath, geopandas)")
        self.export_button.clicked.connect(self._ask_export_path)
        self.figure_button = QPushButton("Save figure (PNG)...")
        self.figure_button.clicked.connect(self._ask_figure_path)

        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Colour spots by:"))
        layout.addLayout(grid)
        layout.addWidget(QLabel("Inspect:"))
        layout.addLayout(docks)
        saving = QHBoxLayout()
        saving.addWidget(self.export_button)
        saving.addWidget(self.figure_button)
        layout.addLayout(saving)
        layout.addStretch(1)

        self.viewer.layers.events.inserted.connect(self._reset_choices)
        self.viewer.layers.events.removed.connect(self._reset_choices)
        self._reset_choices()
        _TRAINING[self.viewer] = self

    # -- choices ---------------------------------------------------------------------------
    def _spot_layers(self, _widget=None) -> list:
        return spot_layers(self.viewer)

    def _label_choices(self, _widget=None) -> list[str]:
        layer = self.layer_combo.value if hasattr(self, "layer_combo") else None
        if layer is None:
            return []
        obs = layer.metadata["adata"].obs
        derived = {keys.CATEGORY, keys.SUGGESTED_LABEL, keys.COMMUNITY, keys.CATEGORY_BEFORE, keys.CATEGORY_CHANGE}
        out = []
        for col in obs.columns:
            if col in derived or not is_categorical(obs[col]) or obs[col].dtype == bool:
                continue
            n = obs[col].nunique()
            if 2 <= n <= max(2, min(200, len(obs) // 2)):
                out.append(col)
        return out

    def _reset_choices(self, _event=None) -> None:
        self.layer_combo.reset_choices()
        if self.layer_combo.value is None and self.layer_combo.choices:
            self.layer_combo.value = self.layer_combo.choices[-1]
        self._on_layer_changed()

    def _on_layer_changed(self, _value=None) -> None:
        previous = self.label_combo.value
        self.label_combo.reset_choices()
        layer = self.layer_combo.value
        if layer is None:
            return
        adata = layer.metadata["adata"]
        stored = adata.uns.get(keys.UNS, {})
        preferred = stored.get("label_key") if isinstance(stored, dict) else None
        options = [c for c in self.label_combo.choices if c is not None]
        for key in (previous, preferred, "label", *options[:1]):
            if key is not None and key in options:
                self.label_combo.value = key
                break
        self._update_color_buttons()
        self._show_recipe()

    def _show_recipe(self) -> None:
        """With the adaptive recipe, grey out epochs and lr and show what it will choose."""
        adaptive = bool(self.adaptive.value)
        self.epochs.enabled = self.lr.enabled = not adaptive
        layer = self.layer_combo.value
        if not adaptive or layer is None:
            return
        from ..core.recipes import resolve_recipe

        adata = layer.metadata["adata"]
        try:
            chosen = resolve_recipe("adaptive", adata.X, adata.n_obs, int(self.batch_size.value))
        except (AnnotatabilityError, ValueError, TypeError, AttributeError):
            return  # no usable X: the training will say why
        self.epochs.value = int(chosen["epochs"])
        self.lr.value = float(chosen["lr"])

    def _update_color_buttons(self) -> None:
        layer = self.layer_combo.value
        feats = layer.features if layer is not None else pd.DataFrame()
        for text, key in COLOR_BUTTONS:
            ok = layer is not None and (key in feats if key else self.label_combo.value is not None)
            self.color_buttons[text].setEnabled(bool(ok) and self.worker is None)

    # -- training --------------------------------------------------------------------------
    @property
    def is_training(self) -> bool:
        return self.worker is not None

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

    def train(self, start: bool = True, *, compare_key: str | None = None):
        """Train in a worker thread; returns the worker (None if no layer/annotation is picked).

        With ``start=False`` the caller connects to the worker's signals and calls
        ``worker.start()`` itself (tests do, inside ``qtbot.waitSignal(worker.finished)``).
        """
        from napari.qt.threading import thread_worker
        from napari.utils.notifications import show_error

        from ..core.pipeline import iter_score

        if self.is_training:
            return None
        layer, label = self.layer_combo.value, self.label_combo.value
        if layer is None or label is None:
            show_error("Annotatability: pick a spots layer and an annotation column first")
            return None
        adata = layer.metadata["adata"]
        calibrate = bool(self.calibrate.value)
        noise = float(self.noise.value)  # read widgets here, never from the worker thread
        rule = str(self.rule.value)
        adaptive = bool(self.adaptive.value)
        params = dict(epochs=None if adaptive else int(self.epochs.value),
                      lr=None if adaptive else float(self.lr.value),
                      batch_size=int(self.batch_size.value), depth=int(self.depth.value),
                      seed=int(self.seed.value), device=str(self.device.value), n_seeds=int(self.n_seeds.value))
        if compare_key is not None:
            params["compare_key"] = compare_key
        epochs = params["epochs"]
        if epochs is None:  # what "auto" will choose: a step budget, so cheap to know now
            from ..core.recipes import adaptive_epochs

            epochs = adaptive_epochs(adata.n_obs, params["batch_size"])
        # training, cross-fitting (two networks; they also suggest the labels), calibrating
        total = epochs * (params["n_seeds"] + 2 + (1 if calibrate else 0))
        self._cancel_requested = False
        self._training_layer = layer
        self._live_colored = False
        self._live_at, self._live_cost = float("-inf"), 0.0
        self.live_recolours = 0  # how many epochs recoloured the spots (benchmarks read it)
        self.live_costs = []  # seconds each took, redraw included

        # errors are handled in _on_error (a notification, no traceback), so none is re-raised
        @thread_worker(progress={"total": total, "desc": f"Annotatability: {label}"}, ignore_errors=True)
        def run():
            return (yield from iter_score(adata, label, calibrate=calibrate, noise=noise, rule=rule,
                                          should_stop=lambda: self._cancel_requested, **params))

        worker = run()
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_result)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        layer.metadata["training"] = True  # writers refuse to export a half result
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

    def _on_progress(self, p) -> None:
        text = {"training": "Training", "cross-fitting": "Out-of-sample check", "calibrating": "Calibrating cut-offs",
                "correcting": "Label correction"}
        loss = f", loss {p.loss:.3f}" if p.loss == p.loss else ""
        self.status.setText(f"{text.get(p.stage, p.stage)}: epoch {p.epoch}/{p.n_epochs}{loss}")
        layer = self._training_layer
        if p.stage == "training" and p.confidence is not None and layer is not None and layer in self.viewer.layers:
            start = time.perf_counter()
            if start - self._live_at < live_interval(len(layer.data), self._live_cost):
                return  # a large section: skip this epoch's recolour, keep the viewer responsive
            sync_features(layer, layer.metadata["adata"], {keys.CONFIDENCE: p.confidence})
            if not self._live_colored:
                # the first colouring sets up the colormap and colorbar: a one-off cost that must not
                # throttle the recolours after it (a 1 s training would show only this one)
                color_by(layer, layer.metadata["adata"], keys.CONFIDENCE)
                self._live_colored = True
                self.live_recolours += 1
                return
            layer.refresh_colors(update_color_mapping=False)
            self._live_at = time.perf_counter()
            self._live_cost = self._live_at - start
            self.live_recolours += 1
            # the redraw comes after, on Qt's update timer (5-16 ms): a later timer fires once it ran
            QTimer.singleShot(int(DRAW_PROBE_S * 1000), lambda: self._measured_draw(start))

    def _measured_draw(self, start: float) -> None:
        self._live_at = time.perf_counter()
        self._live_cost = max(self._live_cost, self._live_at - start - DRAW_PROBE_S)  # recolour + redraw
        self.live_costs.append(self._live_cost)

    def _on_result(self, result) -> None:
        layer = self._training_layer
        adata = layer.metadata["adata"]
        result.write(adata)
        layer.metadata["training"] = False  # the results are whole: docks may read them now
        sync_features(layer, adata)
        if layer not in self.viewer.layers:  # closed while training: the AnnData keeps the results
            self.status.setText(f"Done in {result.dynamics.seconds:.1f} s; the layer was closed, so nothing "
                                "is shown (the results are in its AnnData).")
            return
        counts = adata.obs[keys.CATEGORY].value_counts() if keys.CATEGORY in adata.obs else None
        if counts is not None:
            rule = (result.thresholds or {}).get("rule", "paper")
            self.status.setText(
                f"Done in {result.dynamics.seconds:.1f} s, {rule} rule: "
                + ", ".join(f"{counts.get(c, 0)} {c}" for c in keys.CATEGORIES)
            )
            try:  # what each category means under that rule, on hover
                self.status.setToolTip("\n".join(describe_categories(result.thresholds, counts.to_dict()).values()))
            except KeyError:
                self.status.setToolTip("")
            self.show_feature(keys.CATEGORY, layer=layer)
        else:
            self.status.setText(f"Done in {result.dynamics.seconds:.1f} s.")
            self.show_feature(keys.CONFIDENCE, layer=layer)

    def _on_error(self, exc: Exception) -> None:
        from napari.utils.notifications import show_error

        if isinstance(exc, TrainingCancelled):
            return
        msg = str(exc) if isinstance(exc, (AnnotatabilityError, ValueError, KeyError)) else f"{type(exc).__name__}: {exc}"
        self.status.setText(f"Training failed: {msg}")
        show_error(f"Annotatability: {msg}")

    def _on_finished(self) -> None:
        layer = self._training_layer
        cancelled = self._cancel_requested
        self.worker = None
        if layer is not None:
            layer.metadata["training"] = False
        self._set_running(False)
        if cancelled and layer is not None and layer in self.viewer.layers:
            # drop the live, unfinished scores: the layer shows what the AnnData holds
            adata = layer.metadata["adata"]
            sync_features(layer, adata)
            key = layer.metadata.get("color_by")
            self.show_feature(key if key in adata.obs else None, layer=layer)
            self.status.setText("Cancelled: nothing was written.")

    def open_dock(self, name: str):
        """Open (or show again) one of the plugin's docks; returns its widget."""
        window = getattr(self.viewer, "window", None)
        if window is None or not hasattr(window, "add_plugin_dock_widget"):
            return None
        dock, widget = window.add_plugin_dock_widget("napari-annotatability", name)
        dock.setVisible(True)
        dock.raise_()
        return widget

    # -- export ----------------------------------------------------------------------------
    def _ask_export_path(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        layer = self.layer_combo.value
        stem = layer.name.replace(" ", "_") if layer is not None else "spots"
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export spots", f"{stem}.h5ad", ";;".join(EXPORT_FILTERS))
        if path:
            suffix = EXPORT_FILTERS.get(chosen)
            if suffix and not path.lower().endswith(suffix):
                path += suffix
            self.export(path)

    def export(self, path) -> str | None:
        """Export the chosen spots layer by the file's extension (.h5ad, .csv, .geojson).

        The same writers as *File > Save Selected Layers*: atomic, never over the file the layer
        was read from, refused while a training runs (each refusal is a notification).
        """
        from napari.utils.notifications import show_error

        from . import _writer

        layer = self.layer_combo.value
        if layer is None:
            show_error("Annotatability: no spots layer to export")
            return None
        writers = {".h5ad": _writer.write_h5ad, ".csv": _writer.write_csv, ".geojson": _writer.write_geojson}
        suffix = "." + str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else ""
        if suffix not in writers:
            show_error(f"Annotatability: cannot export to {suffix or 'a file without extension'}; "
                       "use .h5ad, .csv or .geojson")
            return None
        data, meta, _ = layer.as_layer_data_tuple()
        written = writers[suffix](str(path), data, meta)
        return written[0] if written else None

    # -- figure ----------------------------------------------------------------------------
    def _ask_figure_path(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self, "Save figure", "annotatability.png", "PNG image (*.png)")
        if path:
            self.save_figure(path)

    def save_figure(self, path) -> str | None:
        """Save the current view of the canvas as a PNG (atomically); refused while training."""
        from napari.utils.notifications import show_error

        from ..core.io import atomic_write, check_output_path

        if self.is_training:
            show_error("Annotatability: a training is running; save the figure when it has finished")
            return None
        try:
            out = check_output_path(path)
            if out.suffix.lower() != ".png":
                out = out.with_suffix(".png")
            atomic_write(out, lambda tmp: self.viewer.screenshot(path=tmp, canvas_only=True, flash=False),
                         suffix=".png")
        except AnnotatabilityError as err:
            show_error(f"Annotatability: figure not saved: {err}")
            return None
        return str(out)

    # -- colouring -------------------------------------------------------------------------
    def show_feature(self, key: str | None, layer=None) -> None:
        """Colour the spots by ``key`` (None: the annotation); categorical keys get a legend."""
        layer = layer or self.layer_combo.value
        if layer is None:
            return
        adata = layer.metadata["adata"]
        if key is None:
            key = self.label_combo.value or adata.uns.get(keys.UNS, {}).get("label_key")
            if key is None:
                return
        colors = color_by(layer, adata, key)
        if colors is not None:
            show_legend(self.viewer, key, colors, layer.features[key].astype(str).value_counts().to_dict())
        else:
            hide_legend(self.viewer)
        self.viewer.layers.selection.active = layer

    @property
    def legend(self):
        """The viewer's shared legend (see ``_legend.show_legend``)."""
        return viewer_legend(self.viewer)
