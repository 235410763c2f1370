"""The training loop shared by training dynamics, noise calibration and label correction.

One generator, :func:`run`, trains the published classifier on integer labels and, every
epoch *before* that epoch's updates, evaluates every cell (plain tensor code: there is no
autograd anywhere) to record the probability of one or more label vectors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ._config import TrainConfig
from ._data import RowSource
from ._mlp import LeanMLP, hidden_widths
from .errors import AnnotatabilityInputError, TrainingCancelled

__all__ = ["EpochProgress", "EngineOutput", "run"]


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
    seconds: float = 0.0


def _sampling_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    inv = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    return inv[y]


def run(
    source: RowSource,
    y: np.ndarray,
    n_classes: int,
    cfg: TrainConfig,
    *,
    train_rows: np.ndarray | None = None,
    eval_rows: np.ndarray | None = None,
    record: Sequence[np.ndarray] = (),
    should_stop: Callable[[], bool] | None = None,
) -> Generator[EpochProgress, None, EngineOutput]:
    """Train on labels ``y`` (codes in ``[0, n_classes)``) and record p(label) every epoch.

    ``train_rows`` restricts the cells sampled for training (label correction); every cell is
    still evaluated, unless ``eval_rows`` restricts that too (cross-fitting: the other cells'
    recorded values are NaN).  ``record`` lists label vectors whose per-epoch probability is recorded
    (the annotated label, the flipped labels of calibration, a second annotation).
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
    weights = torch.from_numpy(_sampling_weights(y[rows], n_classes)) if cfg.balanced else None

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

    stop = should_stop or (lambda: False)
    bs = int(cfg.batch_size)
    ebs = int(cfg.eval_batch_size)
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
            idx = order[s : s + bs]
            model.train_step(source.take(idx), y_dev[idx.to(device)])
        yield EpochProgress(
            epoch=epoch + 1,
            n_epochs=cfg.epochs,
            loss=loss,
            confidence=(conf_sum / (epoch + 1)).astype(np.float32) if conf_sum is not None else None,
            seconds=time.perf_counter() - t0,
        )
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
