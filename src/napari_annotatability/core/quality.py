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

``annot_label_quality`` is a weighted geometric mean (weight ``IN_SAMPLE_WEIGHT``) of the in-sample signal -- the logistic of the
area under the margin (AUM, Pleiss et al. 2020: mean over epochs of the label's logit minus the
largest other logit) -- and the out-of-sample confidence: a label is trusted only when the
network both prefers it while learning and predicts it for cells it never saw (higher = more
likely correct).  AUM ranks flipped labels at least as well as confidence on every benchmark
set (it keeps the size of the margin that probabilities saturate), and its logistic is a number
in (0, 1) like the out-of-sample confidence.  The cross-fitted networks also average their
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

__all__ = ["QUALITY_RECIPE", "OOS_EPOCHS", "IN_SAMPLE_WEIGHT", "OutOfSample", "stratified_folds", "iter_out_of_sample", "out_of_sample_confidence", "label_quality"]

#: the weight of the in-sample signal in the weighted geometric mean (chosen leaving one dataset out
#: among 0.25 / 0.5 / 0.75 / 1 and the out-of-sample confidence alone: benchmarks/bench_label_quality.py)
IN_SAMPLE_WEIGHT = 0.75
QUALITY_RECIPE = (f"logistic(in-sample AUM) ** {IN_SAMPLE_WEIGHT:g} * "
                  f"(cross-fitted out-of-sample confidence) ** {1 - IN_SAMPLE_WEIGHT:g}")
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


def label_quality(aum: np.ndarray, out_of_sample: np.ndarray) -> np.ndarray:
    """``logistic(aum) ** w * out_of_sample ** (1 - w)``, ``w = IN_SAMPLE_WEIGHT`` (higher = more likely correct)."""
    a = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(aum, dtype=np.float64)))  # logistic, without overflow
    b = np.clip(np.asarray(out_of_sample, dtype=np.float64), 0.0, 1.0)
    return (a**IN_SAMPLE_WEIGHT * b ** (1.0 - IN_SAMPLE_WEIGHT)).astype(np.float32)
