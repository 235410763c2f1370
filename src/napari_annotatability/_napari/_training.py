"""The training form (magicgui fields) and the worker that trains in a thread."""

from __future__ import annotations

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, SpinBox

from ..core import keys
from ..core.errors import AnnotatabilityError
from ..core.labels import annotation_columns
from ..core.rules import RULES
from ._dock import refresh_on_open

__all__ = ["TrainingForm", "label_choices", "make_worker", "expected_epochs", "devices", "FIELDS"]

#: the form's fields, also attributes of the training widget
FIELDS = ("label_combo", "adaptive", "epochs", "lr", "batch_size", "depth", "seed", "n_seeds", "device",
          "calibrate", "noise", "rule")


#: the fields always in view (the others are under "Advanced")
BASIC = ("label_combo", "rule", "calibrate", "adaptive")


def devices() -> list[str]:
    import torch

    out = ["auto", "cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def label_choices(obs) -> list[str]:
    """obs columns that can be trained on: the engine's rule (``core.labels``), as the CLI applies it."""
    return annotation_columns(obs)


class TrainingForm:
    """The parameter fields; ``layer_combo`` comes from the dock (a picker of the model's layers)."""

    def __init__(self, layer_combo) -> None:
        self.layer_combo = layer_combo
        self.label_combo = ComboBox(label="annotation", choices=self._label_choices, nullable=True)
        # the adaptive recipe derives epochs (a step budget) and the learning rate (from the input
        # scale) from the data (core.recipes); the fields then show what it chose, greyed out
        self.adaptive = CheckBox(text="adaptive recipe", value=True)
        self.adaptive.tooltip = "epochs and learning rate from the data (shown greyed out under Advanced)"
        self.epochs = SpinBox(label="epochs", value=100, min=1, max=5000)
        self.lr = FloatSpinBox(label="learning rate", value=1e-3, min=1e-5, max=1.0, step=1e-4)
        self.epochs.tooltip = "with the adaptive recipe: about 1000 optimisation steps (20 to 1000 epochs)"
        self.lr.tooltip = "with the adaptive recipe: 1 / mean squared norm of the cells, within [1e-3, 1e-2]"
        self.batch_size = SpinBox(label="batch size", value=256, min=8, max=65536, step=32)
        self.depth = ComboBox(label="depth", choices=[3, 4, 5], value=3)
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.n_seeds = SpinBox(label="seeds", value=1, min=1, max=20)
        self.n_seeds.tooltip = ("train this many networks (seed, seed + 100, ...) and average their scores: "
                                "steadier scores on small datasets, n times the training time")
        self.device = ComboBox(label="device", choices=devices(), value="auto")
        self.calibrate = CheckBox(text="calibrate cut-offs", value=True)
        self.calibrate.tooltip = "calibrate the category cut-offs by noise injection (flip a known fraction of labels)"
        self.noise = FloatSpinBox(label="noise fraction", value=0.1, min=0.01, max=0.5, step=0.01)
        self.rule = ComboBox(label="category rule", choices=list(RULES), value=RULES[0])
        self.rule.tooltip = ("calibrated: erroneous = label quality at or below the calibrated cut-off, ambiguous = "
                             "the network cannot settle the spot; paper: the published rule on confidence and "
                             "variability")
        # columns added to the table since (from Python, an import) appear when the list is opened
        refresh_on_open(self.label_combo, lambda: self.pick_label(self.label_combo.value))
        # what most trainings change stays in view; the rest folds away (the dock fits a laptop screen)
        self.container = Container(widgets=[self.layer_combo, *(getattr(self, f) for f in BASIC)])
        self.advanced = Container(widgets=[getattr(self, f) for f in FIELDS if f not in BASIC])
        self.container.margins = self.advanced.margins = (0, 0, 0, 0)  # the dock's layout has its own
        self.lr.native.setDecimals(5)
        self.adaptive.changed.connect(lambda _v: self.show_recipe())
        self.batch_size.changed.connect(lambda _v: self.show_recipe())
        self.calibrate.changed.connect(lambda v: setattr(self.noise, "enabled", bool(v)))

    @property
    def enabled(self) -> bool:
        return bool(self.container.enabled)

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self.container.enabled = self.advanced.enabled = bool(value)

    def _label_choices(self, _widget=None) -> list[str]:
        layer = self.layer_combo.value if hasattr(self, "layer_combo") else None
        return [] if layer is None else label_choices(layer.metadata["adata"].obs)

    def pick_label(self, previous=None) -> None:
        """Refill the annotation choices; keep ``previous``, else the trained one, 'label', the first."""
        self.label_combo.reset_choices()
        layer = self.layer_combo.value
        if layer is None:
            return
        stored = layer.metadata["adata"].uns.get(keys.UNS, {})
        preferred = stored.get("label_key") if isinstance(stored, dict) else None
        options = [c for c in self.label_combo.choices if c is not None]
        for key in (previous, preferred, "label", *options[:1]):
            if key is not None and key in options:
                self.label_combo.value = key
                break

    def show_recipe(self) -> None:
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

    def settings(self) -> dict:
        """What the worker needs, read from the widgets here (never from the worker thread)."""
        adaptive = bool(self.adaptive.value)
        params = dict(epochs=None if adaptive else int(self.epochs.value),
                      lr=None if adaptive else float(self.lr.value),
                      batch_size=int(self.batch_size.value), depth=int(self.depth.value),
                      seed=int(self.seed.value), device=str(self.device.value), n_seeds=int(self.n_seeds.value))
        return {"calibrate": bool(self.calibrate.value), "noise": float(self.noise.value),
                "rule": str(self.rule.value), "params": params}


def expected_epochs(adata, settings: dict) -> int:
    """How many epochs (progress yields) a training with ``settings`` runs, over all its stages."""
    params = settings["params"]
    epochs = params["epochs"]
    if epochs is None:  # what "auto" will choose: a step budget, so cheap to know now
        from ..core.recipes import adaptive_epochs

        epochs = adaptive_epochs(adata.n_obs, params["batch_size"])
    # training, cross-fitting (two networks; they also suggest the labels), calibrating
    return int(epochs) * (params["n_seeds"] + 2 + (1 if settings["calibrate"] else 0))


def make_worker(adata, label: str, settings: dict, should_stop, compare_key: str | None = None):
    """A (not started) ``thread_worker`` running ``core.pipeline.iter_score``.

    No napari progress bar is attached here (``thread_worker(progress=...)`` would connect it
    to ``yielded`` directly, and its ``setValue`` calls ``processEvents``: see ``_serial``); the
    widget keeps its own, updated through its serialised slots.
    """
    from napari.qt.threading import thread_worker

    from ..core.pipeline import iter_score

    params = dict(settings["params"])
    if compare_key is not None:
        params["compare_key"] = compare_key
    calibrate, noise, rule = settings["calibrate"], settings["noise"], settings["rule"]

    # errors are handled by the caller (a notification, no traceback), so none is re-raised
    @thread_worker(ignore_errors=True)
    def run():
        return (yield from iter_score(adata, label, calibrate=calibrate, noise=noise, rule=rule,
                                      should_stop=should_stop, **params))

    return run()
