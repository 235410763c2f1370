"""Label quality: training dynamics combined with an out-of-sample check.

Training dynamics are *in-sample*: the network sees every cell's label, and with many steps on
few cells it memorises wrong labels (on pbmc68k_reduced with 20 % of labels flipped uniformly,
in-sample confidence finds them with AUROC ~0.75; cross-validated probabilities with ~0.97).
Out-of-sample probabilities, in turn, miss *systematic* confusions that the dynamics catch (a
class partly relabelled as its neighbour: ~0.78 against ~0.90), because a held-out model
trained on the same confusion predicts it too.

:func:`iter_out_of_sample` cross-fits the same classifier: the cells are split into ``folds``
class-stratified folds; for each fold a network is trained (same recipe, its own seed) on the
other folds and records, every epoch, the held-out cells' probability of their annotated label.
The **out-of-sample confidence** is the mean of that trajectory over the *last half* of the
epochs (``OOS_EPOCHS``).  The first epochs score a barely trained network, whose probabilities
say how quickly a cell's type is learnt rather than whether its label is right -- the in-sample
dynamics carry that signal already -- and averaging over them cost pbmc68k_reduced with uniform
flips 0.013 AUROC (0.950 -> 0.963, every other benchmark set within 0.001).  The final epoch
alone gains more there (0.969) but is noisier and follows memorised flips on imbalanced
classes (0.988 against 0.992 at 40 % flips).
With two folds the cost is about one training run: each network takes half the steps and
evaluates half the cells (it evaluates every epoch: the progress bar and live view show them).

``annot_label_quality`` combines the two by rank: the mean of a cell's percentile rank among the
scored cells in *in-sample confidence* (the mean probability of its label over the training
epochs, the paper's signal) and in *out-of-sample confidence*.  A label is trusted only when the
network both learns it readily and predicts it for cells it never saw; a quality of 0.1 says
the cell's label looks worse than that of about nine cells in ten (higher = more likely
correct).  Ranks, not the probabilities themselves, because the held-out probabilities are sharp
(spanning decades below 0.1) and in a product or a mean they drown the in-sample signal: on the
DLPFC Visium sections the in-sample confidence of the half-balanced recipe finds flipped layers
better than any held-out probability, and the rank mean gains 0.02-0.03 AUROC there over the
earlier ``logistic(AUM)**0.75 * oos**0.25``, chosen leaving one dataset out
(``benchmarks/bench_label_quality.py``, combination ``rank-conf``).  A noise-injection run
(:mod:`.categories`) ranks its deliberately flipped cells against the same scored cells
(:func:`label_quality` with ``reference``), so its cut-off applies to these values.
The cross-fitted networks also average their
softmax over every class (``OutOfSample.probabilities``, ``obsm['annot_oos_probabilities']``):
the default category rule (:mod:`.categories`) calls a cell ambiguous when they split it
between two classes.  The paper's categories (``rule="paper"``) come from the in-sample
confidence and variability alone.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, replace

import numpy as np
import torch

from ._data import get_labels, resolve_device
from ._engine import EpochProgress, drive, run
from .errors import AnnotatabilityInputError
from .inputs import make_source

__all__ = ["QUALITY_RECIPE", "OOS_EPOCHS", "OutOfSample", "stratified_folds", "iter_out_of_sample",
           "out_of_sample_confidence", "label_quality", "percentile_rank", "describe_quality",
           "quality_cutoff_text"]

#: how the in-sample and out-of-sample signals combine into ``annot_label_quality`` (recorded in
#: ``uns['annotatability']['label_quality']['recipe']``)
QUALITY_RECIPE = ("mean of the percentile ranks, among the scored cells, of the in-sample confidence and the "
                  "cross-fitted out-of-sample confidence")
#: which epochs of the held-out trajectory the out-of-sample confidence averages
OOS_EPOCHS = "last half"


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold index per cell: each class dealt round-robin over the folds after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    fold = np.empty(y.size, dtype=np.int64)
    offset = 0
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        rng.shuffle(rows)
        fold[rows] = (np.arange(rows.size) + offset) % folds
        offset += rows.size  # small classes do not all start in fold 0
    return fold


@dataclass
class OutOfSample:
    """What the cross-fitted networks say about each cell, from a network that never saw it."""

    confidence: np.ndarray  # mean of p(annotated label) over the last half of the epochs, float32
    predicted: np.ndarray  # codes of the most probable class after training
    predicted_prob: np.ndarray  # its probability, float32
    classes: list[str]
    info: dict
    #: n_obs x classes: mean softmax over every class, averaged over the same epochs as
    #: ``confidence`` (so ``confidence[i] == probabilities[i, y_i]``), float32
    probabilities: np.ndarray | None = None


def iter_out_of_sample(
    adata,
    label_key: str,
    *,
    folds: int = 2,
    should_stop: Callable[[], bool] | None = None,
    **train_kwargs,
) -> Generator[EpochProgress, None, OutOfSample]:
    """Cross-fitted out-of-sample confidence, probabilities and predictions; returns an :class:`OutOfSample`.

    ``train_kwargs`` as for the label-correction retraining (the recipe of the last dynamics
    run unless overridden).  Yields one progress item per epoch of each fold's network.
    """
    from .categories import _train_config

    if not isinstance(folds, int) or folds < 2:
        raise AnnotatabilityInputError(f"folds must be an integer >= 2, got {folds!r}")
    cfg, where = _train_config(adata, dict(train_kwargs))
    y, classes = get_labels(adata, label_key)
    if adata.n_obs < 2 * folds:
        raise AnnotatabilityInputError(f"out-of-sample check needs at least {2 * folds} cells, got {adata.n_obs}")
    fold = stratified_folds(y, folds, cfg.seed)
    source, _ = make_source(adata, where["layer"], resolve_device(where["device"]), where["input"],
                            standardize=where["standardize"], seed=cfg.seed)
    conf = np.full(adata.n_obs, np.nan)
    predicted = np.zeros(adata.n_obs, dtype=np.int64)
    predicted_prob = np.zeros(adata.n_obs, dtype=np.float32)
    probabilities = np.full((adata.n_obs, len(classes)), np.nan, dtype=np.float32)
    seconds = 0.0
    for f in range(folds):
        held = fold == f
        sub = replace(cfg, seed=cfg.seed + 1 + f)  # not the main run's network
        gen = run(source, y, len(classes), sub, train_rows=np.flatnonzero(~held), eval_rows=np.flatnonzero(held),
                  record=[y], record_probs=True, should_stop=should_stop)
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                out = stop.value
                break
            yield EpochProgress(epoch=f * cfg.epochs + p.epoch, n_epochs=folds * cfg.epochs, loss=p.loss,
                                confidence=None, seconds=seconds + p.seconds)
        seconds += out.seconds
        traj = out.trajectories[0][held]
        conf[held] = traj[:, traj.shape[1] // 2 :].mean(axis=1, dtype=np.float64)
        probabilities[held] = out.mean_probs[held]
        rows = np.flatnonzero(held)
        with torch.inference_mode():
            for s in range(0, rows.size, cfg.eval_batch_size):
                chunk = rows[s : s + cfg.eval_batch_size]
                pmax, arg = out.model.predict_proba(source.take(torch.from_numpy(chunk))).max(dim=1)
                predicted[chunk] = arg.cpu().numpy()
                predicted_prob[chunk] = pmax.cpu().numpy()
    info = {"folds": int(folds), "epochs": int(cfg.epochs), "averaged_epochs": OOS_EPOCHS, "seed": int(cfg.seed),
            "seconds": float(seconds)}
    return OutOfSample(conf.astype(np.float32), predicted, predicted_prob, [str(c) for c in classes], info,
                       probabilities=probabilities)


def out_of_sample_confidence(adata, label_key: str, *, folds: int = 2, **train_kwargs) -> np.ndarray:
    """Blocking form of :func:`iter_out_of_sample`; returns the confidence per cell."""
    return drive(iter_out_of_sample(adata, label_key, folds=folds, **train_kwargs)).confidence


def percentile_rank(values: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Mid-rank percentile of each value among ``reference`` (default: ``values``), in [0, 1].

    ``(#reference < v + #reference <= v) / (2 n)``: ties share the mean of their ranks, a value
    below every reference value gets 0 and one above every reference value 1.  Non-finite
    values rank lowest (as the least trustworthy); so do non-finite reference values.
    """
    v = np.asarray(values, dtype=np.float64)
    ref = np.asarray(v if reference is None else reference, dtype=np.float64).ravel()
    if ref.size == 0:
        raise AnnotatabilityInputError("percentile ranks need at least one reference value")
    ref = np.sort(np.where(np.isfinite(ref), ref, -np.inf))
    v = np.where(np.isfinite(v), v, -np.inf)
    below = np.searchsorted(ref, v, side="left")
    at_or_below = np.searchsorted(ref, v, side="right")
    return (below + at_or_below) / (2.0 * ref.size)


def label_quality(confidence: np.ndarray, out_of_sample: np.ndarray,
                  reference: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Label quality per cell, in [0, 1] (higher = more likely correct; see the module docstring).

    The mean of the percentile ranks of ``confidence`` (in-sample, ``obs['annot_confidence']``)
    and ``out_of_sample`` (``obs['annot_oos_confidence']``).  Ranked among themselves, or, with
    ``reference = (confidence, out_of_sample)`` of the scored cells, among those: a calibration
    run places its deliberately flipped cells on the scored cells' scale that way.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    oos = np.asarray(out_of_sample, dtype=np.float64)
    if conf.shape != oos.shape:
        raise AnnotatabilityInputError(
            f"confidence and out-of-sample confidence must have one value per cell, got shapes {conf.shape} "
            f"and {oos.shape}"
        )
    ref_conf, ref_oos = (conf, oos) if reference is None else reference
    return (0.5 * (percentile_rank(conf, ref_conf) + percentile_rank(oos, ref_oos))).astype(np.float32)


def _erroneous_cutoff(adata) -> float | None:
    """The calibrated rule's label-quality cut-off recorded in ``uns`` (``-inf``: none called); None
    when the cells were not categorised by ``rule="calibrated"``."""
    from . import keys

    info = adata.uns.get(keys.UNS, {})
    th = info.get("thresholds", {}) if isinstance(info, dict) else {}
    if not isinstance(th, dict) or th.get("rule") != "calibrated" or th.get("label_quality") is None:
        return None
    return float(th["label_quality"])


def quality_cutoff_text(adata) -> str:
    """The label quality at or below which the calibrated rule called cells erroneous, as text.

    ``"0.137"``; ``"none called (no cut-off)"`` when the calibration found no precise level;
    ``"—"`` when the cells were not categorised by ``rule="calibrated"``.
    """
    cut = _erroneous_cutoff(adata)
    if cut is None:
        return "—"
    return f"{cut:.3f}" if np.isfinite(cut) else "none called (no cut-off)"


def describe_quality(adata, index: int, *, cutoff: bool = True) -> str:
    """Cell ``index``'s label quality in words a reader can weigh, for the viewer's panels.

    Label quality is relative (a mean of percentile ranks among the scored cells), so the value
    alone misleads: the lowest cell of a clean dataset shows about 0.00.  Beside the value this
    says the cell's rank, lowest first, and (``cutoff``) the label quality at or below which the
    calibrated rule calls a cell erroneous (:func:`quality_cutoff_text`), e.g. ``"0.041, rank 112
    of 3 005 (lowest first); erroneous at or below 0.137"`` (three decimals, as the inspector's
    other values: near a small cut-off two would show a cell above it and the cut-off alike).
    ``"—"`` when the cells were not scored (or this one has no finite value).
    """
    from . import keys

    if keys.LABEL_QUALITY not in adata.obs:
        return "—"
    values = adata.obs[keys.LABEL_QUALITY].to_numpy(dtype=np.float64)
    if not 0 <= index < values.size:
        raise AnnotatabilityInputError(f"cell index {index} is out of range for {values.size} cells")
    v = values[index]
    if not np.isfinite(v):
        return "—"
    finite = values[np.isfinite(values)]
    rank = int(np.count_nonzero(finite < v)) + 1  # ties share the best (lowest) rank

    def spaced(k: int) -> str:  # 3 005: the thin grouping the docs use
        return f"{k:,}".replace(",", " ")

    text = f"{v:.3f}, rank {spaced(rank)} of {spaced(finite.size)} (lowest first)"
    cut = _erroneous_cutoff(adata) if cutoff else None
    if cut is not None:
        text += f"; erroneous at or below {cut:.3f}" if np.isfinite(cut) else "; none called erroneous (no cut-off)"
    return text
