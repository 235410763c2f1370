"""The training loop shared by training dynamics, noise calibration and label correction.

One generator, :func:`run`, trains the published classifier on integer labels and, every
epoch *before* that epoch's updates, evaluates every cell (plain tensor code: there is no
autograd anywhere) to record the probability of one or more label vectors.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ._config import TrainConfig
from ._data import RowSource
from ._mlp import LeanMLP, hidden_widths
from ._threads import ThreadGovernor, step_flops
from .errors import AnnotatabilityInputError, DivergenceWarning, TrainingCancelled, TrainingDiverged

__all__ = ["EpochProgress", "EngineOutput", "run", "MAX_RESTARTS", "RESTART_LR_FACTOR"]

#: a run whose weights or loss become non-finite restarts from scratch (same seed) with its
#: learning rate divided by ``RESTART_LR_FACTOR``, at most ``MAX_RESTARTS`` times
MAX_RESTARTS = 3
RESTART_LR_FACTOR = 4.0


@dataclass
class EpochProgress:
    """What the training generator yields after each epoch.

    Attributes
    ----------
    epoch
        Epochs finished so far (1-based).
    n_epochs
        Epochs asked for.
    loss
        Mean cross-entropy of all cells against their annotated label, evaluated at the start
        of this epoch (NaN when nothing is recorded, as in label correction).
    confidence
        Running confidence (mean recorded p(label) so far) per cell, float32; None when nothing
        is recorded.
    seconds
        Wall time since the run started.
    stage
        Which training of a pipeline this is: ``"training"``, ``"calibrating"``, ``"correcting"``.
    """

    epoch: int
    n_epochs: int
    loss: float
    confidence: np.ndarray | None
    seconds: float
    stage: str = "training"


@dataclass
class EngineOutput:
    model: LeanMLP
    trajectories: list[np.ndarray] = field(default_factory=list)  # n_obs x epochs, float32
    correct_counts: list[np.ndarray] = field(default_factory=list)
    margin_sums: list[np.ndarray] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    #: with ``record_probs``: mean softmax over every class across epochs >= epochs // 2
    #: (n_obs x n_classes, float32; NaN rows for cells not evaluated)
    mean_probs: np.ndarray | None = None
    seconds: float = 0.0
    #: the learning rate the run finished with, and how many times it restarted to get there
    lr: float = 0.0
    restarts: int = 0


def _sampling_weights(y: np.ndarray, n_classes: int, power: float = 1.0) -> np.ndarray:
    """Per-cell sampling weight ``count(class) ** -power`` (1: class-balanced)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    inv = np.zeros_like(counts)
    if power == 1.0:  # exactly 1 / count, as always (the same draws for the same seed)
        np.divide(1.0, counts, out=inv, where=counts > 0)
    else:
        np.power(counts, -float(power), out=inv, where=counts > 0)
    return inv[y]


class _Diverged(Exception):
    def __init__(self, epoch: int) -> None:
        super().__init__(epoch)
        self.epoch = epoch


def run(source: RowSource, y: np.ndarray, n_classes: int, cfg: TrainConfig, **kwargs
        ) -> Generator[EpochProgress, None, EngineOutput]:
    """Train and record as :func:`_run_once` does, restarting a run that diverges.

    After every epoch the weights (and the epoch's loss) are checked to be finite.  When they
    are not, the run starts again from scratch -- same seed, learning rate divided by
    ``RESTART_LR_FACTOR`` -- at most ``MAX_RESTARTS`` times, with a :class:`DivergenceWarning`;
    progress then counts epochs from 1 again.  The returned :class:`EngineOutput` holds the
    learning rate that worked (``lr``) and the number of restarts.  Raises
    :class:`~.errors.TrainingDiverged`, naming the input's scale, when every try diverges.
    """
    lr = float(cfg.lr)
    for restart in range(MAX_RESTARTS + 1):
        try:
            out = yield from _run_once(source, y, n_classes, replace(cfg, lr=lr), **kwargs)
        except _Diverged as div:
            if restart == MAX_RESTARTS:
                raise TrainingDiverged(
                    f"training diverged (non-finite weights or loss at epoch {div.epoch}) with every learning rate "
                    f"tried, from {cfg.lr:.3g} down to {lr:.3g}. {_scale_note(source)} Bring the input to a "
                    "modest scale: input='auto' (the default) normalises raw counts and intensities on the fly, "
                    "or preprocess the data (napari_annotatability.core.preprocess; CLI --preprocess); or pass a "
                    "smaller lr"
                ) from None
            warnings.warn(
                f"training diverged (non-finite weights or loss at epoch {div.epoch}, lr {lr:.3g}); restarting "
                f"from scratch with lr {lr / RESTART_LR_FACTOR:.3g}",
                DivergenceWarning,
                stacklevel=2,
            )
            lr /= RESTART_LR_FACTOR
            continue
        out.lr, out.restarts = lr, restart
        return out
    raise AssertionError("unreachable")  # pragma: no cover


def _scale_note(source: RowSource) -> str:
    """What the network's input looks like, from its first rows (for the divergence error)."""
    try:
        xb = source.slice(0, min(source.n_obs, 512)).double()
        return (f"The input the network sees reaches |x| = {float(xb.abs().max()):.3g} (mean squared row norm "
                f"{float(torch.square(xb).sum(dim=1).mean()):.3g}, {source.n_vars} features).")
    except Exception:  # pragma: no cover - a note, never a second error
        return ""


def _run_once(
    source: RowSource,
    y: np.ndarray,
    n_classes: int,
    cfg: TrainConfig,
    *,
    train_rows: np.ndarray | None = None,
    eval_rows: np.ndarray | None = None,
    record: Sequence[np.ndarray] = (),
    record_probs: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[EpochProgress, None, EngineOutput]:
    """Train on labels ``y`` (codes in ``[0, n_classes)``) and record p(label) every epoch.

    ``train_rows`` restricts the cells sampled for training (label correction); every cell is
    still evaluated, unless ``eval_rows`` restricts that too (cross-fitting: the other cells'
    recorded values are NaN).  ``record`` lists label vectors whose per-epoch probability is recorded
    (the annotated label, the flipped labels of calibration, a second annotation).
    ``record_probs`` also averages, for the evaluated cells, the softmax over *every* class across
    the last half of the epochs (``epoch >= epochs // 2``, the epochs the out-of-sample confidence
    averages) into ``EngineOutput.mean_probs``, from the logits of the same evaluation pass; it
    needs at least one ``record`` vector (the evaluation pass runs only when something is recorded).
    ``should_stop`` is polled before every batch; when it returns True the generator raises
    :class:`TrainingCancelled`.
    """
    t0 = time.perf_counter()
    device = source.device
    gen = torch.Generator().manual_seed(int(cfg.seed))
    sizes = [source.n_vars, *hidden_widths(source.n_vars, cfg.depth, cfg.min_hidden), n_classes]
    model = LeanMLP(sizes, lr=cfg.lr, momentum=cfg.momentum, generator=gen, device=device)

    rows = np.arange(source.n_obs) if train_rows is None else np.asarray(train_rows, dtype=np.int64)
    if rows.size == 0:
        raise AnnotatabilityInputError("no cell to train on")
    y_dev = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)).to(device)
    rows_t = torch.from_numpy(rows)
    power = float(cfg.balanced)  # True = 1 (class-balanced), False = 0 (a shuffle), or in between
    weights = torch.from_numpy(_sampling_weights(y[rows], n_classes, power)) if power > 0 else None

    n = source.n_obs
    out = EngineOutput(model=model)
    rec_dev = [torch.from_numpy(np.ascontiguousarray(r, dtype=np.int64)).to(device) for r in record]
    ev_rows = None if eval_rows is None else np.asarray(eval_rows, dtype=np.int64)
    n_eval = n if ev_rows is None else ev_rows.size
    for _ in rec_dev:
        out.trajectories.append(np.full((n, cfg.epochs), np.nan if ev_rows is not None else 0.0, dtype=np.float32))
        out.correct_counts.append(np.zeros(n, dtype=np.int32))
        out.margin_sums.append(np.zeros(n, dtype=np.float64))
    conf_sum = np.zeros(n, dtype=np.float64) if rec_dev else None
    if record_probs and not rec_dev:
        raise ValueError("record_probs needs at least one label vector in record")
    first_prob_epoch = cfg.epochs // 2
    prob_sum = np.zeros((n_eval, n_classes), dtype=np.float64) if record_probs else None

    stop = should_stop or (lambda: False)
    bs = int(cfg.batch_size)
    ebs = int(cfg.eval_batch_size)
    # torch's thread count follows the load on this machine (see _threads)
    with ThreadGovernor(step_flops(sizes, bs)) as governor:
        for epoch in range(cfg.epochs):
            loss = float("nan")
            if rec_dev:
                nll = 0.0
                for s in range(0, n_eval, ebs):
                    e = min(n_eval, s + ebs)
                    if ev_rows is None:
                        sel, xb = slice(s, e), source.slice(s, e)
                        labels = [r[s:e] for r in rec_dev]
                    else:
                        sel = ev_rows[s:e]
                        idx = torch.from_numpy(sel)
                        xb = source.take(idx)
                        labels = [r[idx.to(device)] for r in rec_dev]
                    if prob_sum is not None and epoch >= first_prob_epoch:
                        evals, probs = model.evaluate_with_probs(xb, labels)
                        prob_sum[s:e] += probs.t().cpu().numpy()  # rows in evaluation order
                    else:
                        evals = model.evaluate(xb, labels)
                    for k, ev in enumerate(evals):
                        out.trajectories[k][sel, epoch] = ev.prob.cpu().numpy()
                        out.correct_counts[k][sel] += ev.correct.cpu().numpy()
                        out.margin_sums[k][sel] += ev.margin.cpu().numpy()
                        if k == 0:
                            nll += float(ev.nll.sum())
                loss = nll / n_eval
                conf_sum += out.trajectories[0][:, epoch]
                out.losses.append(loss)
            # one epoch = len(rows) draws: class-balanced with replacement, or a shuffle
            if weights is not None:
                order = rows_t[torch.multinomial(weights, rows.size, replacement=True, generator=gen)]
            else:
                order = rows_t[torch.randperm(rows.size, generator=gen)]
            for s in range(0, rows.size, bs):
                if stop():
                    raise TrainingCancelled(f"training stopped by request during epoch {epoch + 1}")
                governor.tick()
                idx = order[s : s + bs]
                model.train_step(source.take(idx), y_dev[idx.to(device)])
            # one reduction, no n_params-sized mask: the sum is finite iff every weight is (or it overflowed)
            if (rec_dev and not math.isfinite(loss)) or not math.isfinite(float(model.flat.sum())):
                raise _Diverged(epoch + 1)
            yield EpochProgress(
                epoch=epoch + 1,
                n_epochs=cfg.epochs,
                loss=loss,
                confidence=(conf_sum / (epoch + 1)).astype(np.float32) if conf_sum is not None else None,
                seconds=time.perf_counter() - t0,
            )
    if prob_sum is not None:
        mean = (prob_sum / (cfg.epochs - first_prob_epoch)).astype(np.float32)
        if ev_rows is None:
            out.mean_probs = mean
        else:
            out.mean_probs = np.full((n, n_classes), np.nan, dtype=np.float32)
            out.mean_probs[ev_rows] = mean
    out.seconds = time.perf_counter() - t0
    return out


def drive(gen: Generator, progress=None):
    """Run a generator to completion, feeding each yield to ``progress``; return its value."""
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(item)
