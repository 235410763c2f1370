"""Training dynamics: confidence, variability, correctness and AUM per cell."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import keys
from ._config import TrainConfig
from ._data import get_labels, get_matrix, resolve_device
from ._engine import EpochProgress, drive, run
from ._progress import tqdm_callback
from ._threads import requested_threads
from .errors import AnnotatabilityInputError, TrainingDiverged
from .inputs import make_source
from .recipes import resolve_recipe

__all__ = ["DynamicsResult", "iter_training_dynamics", "training_dynamics", "compare_annotations", "EpochProgress",
           "require_finite"]


@dataclass
class DynamicsResult:
    """Scores of one training run, not yet written to an AnnData.

    ``write(adata)`` stores them under the documented keys (see :mod:`.keys`).
    """

    label_key: str
    classes: list[str]
    trajectory: np.ndarray
    correct_count: np.ndarray
    margin_sum: np.ndarray
    params: dict
    seconds: float
    losses: list[float]
    other_key: str | None = None
    other_trajectory: np.ndarray | None = None
    extra: dict = field(default_factory=dict)
    #: a seed ensemble's variability: the mean of its members' (None: from ``trajectory``)
    member_variability: np.ndarray | None = None

    @staticmethod
    def _scores(traj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        conf = traj.mean(axis=1, dtype=np.float64)
        var = traj.std(axis=1, dtype=np.float64)  # population std, as in the paper
        return conf.astype(np.float32), var.astype(np.float32)

    @property
    def confidence(self) -> np.ndarray:
        return self._scores(self.trajectory)[0]

    @property
    def variability(self) -> np.ndarray:
        if self.member_variability is not None:
            return self.member_variability.astype(np.float32)
        return self._scores(self.trajectory)[1]

    @property
    def correctness(self) -> np.ndarray:
        return (self.correct_count / self.trajectory.shape[1]).astype(np.float32)

    @property
    def aum(self) -> np.ndarray:
        return (self.margin_sum / self.trajectory.shape[1]).astype(np.float32)

    def check_finite(self) -> None:
        """Raise :class:`~.errors.TrainingDiverged` unless every score is a finite number."""
        for name, values in (("confidence", self.confidence), ("variability", self.variability),
                             ("correctness", self.correctness), ("aum", self.aum)):
            require_finite(values, name)

    def write(self, adata) -> None:
        """Store the scores in ``adata`` and drop results derived from an earlier run.

        Raises :class:`~.errors.TrainingDiverged` (and writes nothing) if a score is not finite.
        """
        if adata.n_obs != self.trajectory.shape[0]:
            raise AnnotatabilityInputError(
                f"these scores are for {self.trajectory.shape[0]} cells, the AnnData has {adata.n_obs}"
            )
        self.check_finite()
        keys.drop_derived(adata)
        adata.obs[keys.CONFIDENCE] = self.confidence
        adata.obs[keys.VARIABILITY] = self.variability
        adata.obs[keys.CORRECTNESS] = self.correctness
        adata.obs[keys.AUM] = self.aum
        adata.obsm[keys.TRAJECTORY] = self.trajectory
        info = {
            "label_key": self.label_key,
            "classes": list(self.classes),
            "params": dict(self.params),
            "seconds": float(self.seconds),
            "loss": [float(x) for x in self.losses],
            "version": keys.package_version(),
            **self.extra,
        }
        if self.other_trajectory is not None:
            oconf, ovar = self._scores(self.other_trajectory)
            adata.obs[keys.OTHER_CONFIDENCE] = oconf
            adata.obs[keys.OTHER_VARIABILITY] = ovar
            adata.obsm[keys.OTHER_TRAJECTORY] = self.other_trajectory
            info["other_label_key"] = self.other_key
        adata.uns[keys.UNS] = info


def require_finite(values: np.ndarray, name: str) -> None:
    """Raise :class:`~.errors.TrainingDiverged` if a score is NaN or infinite for any cell.

    Parameters
    ----------
    values
        One score per cell.
    name
        The score's name, for the message.
    """
    values = np.asarray(values)
    bad = int(values.size - np.isfinite(values).sum())
    if bad:
        raise TrainingDiverged(
            f"{bad} of {values.size} cells have a non-finite {name} (NaN or infinite): the training did not "
            "converge, and nothing was written. Bring the input to a modest scale (input='auto', or "
            "napari_annotatability.core.preprocess) or lower the learning rate"
        )


def _prepare(adata, label_key, other_key, layer, device, input="auto", standardize=None, seed=0):
    if other_key is None:
        y, classes = get_labels(adata, label_key)
        y_other = None
    else:
        if other_key == label_key:
            raise AnnotatabilityInputError("compare_key must name a different obs column than label_key")
        _, c1 = get_labels(adata, label_key)
        _, c2 = get_labels(adata, other_key, min_classes=1)
        classes = c1.append(c2.difference(c1))
        y = pd.Categorical(adata.obs[label_key].astype(str), categories=classes.astype(str)).codes.astype(np.int64)
        y_other = pd.Categorical(adata.obs[other_key].astype(str), categories=classes.astype(str)).codes.astype(np.int64)
        classes = pd.Index(classes.astype(str))
    X = get_matrix(adata, layer)
    dev = resolve_device(device)
    source, plan = make_source(adata, layer, dev, input, standardize=standardize, seed=seed, X=X)
    return source, y, y_other, classes, dev, X, plan


def iter_training_dynamics(
    adata,
    label_key: str,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    momentum: float = 0.9,
    batch_size: int = 256,
    depth: int = 3,
    balanced: bool | float | None = None,
    layer: str | None = None,
    device: str = "auto",
    seed: int = 0,
    min_hidden: int | None = None,
    recipe: str = "adaptive",
    compare_key: str | None = None,
    eval_batch_size: int = 4096,
    n_seeds: int = 1,
    input: str | dict = "auto",
    standardize: bool | None = None,
    steps: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[EpochProgress, None, DynamicsResult]:
    """Train the classifier and yield progress after every epoch; return the scores.

    The generator form of :func:`training_dynamics`, for drivers that show progress or may
    stop early (the napari widget runs it in a worker thread).  It only *reads* ``adata``;
    write the returned :class:`DynamicsResult` with ``result.write(adata)``.  Stopping
    (``should_stop`` returning True, or closing the generator) leaves ``adata`` untouched.

    Yields
    ------
    EpochProgress
        epoch, loss, running confidence per cell, elapsed seconds.

    Returns
    -------
    DynamicsResult
    """
    sample_seed = seed if isinstance(seed, int) and seed >= 0 else 0
    source, y, y_other, classes, dev, X, plan = _prepare(adata, label_key, compare_key, layer, device, input,
                                                         standardize, sample_seed)
    # the learning rate follows the scale of what the network sees (X itself when as-is)
    chosen = resolve_recipe(recipe, source if plan["steps"] else X, adata.n_obs, batch_size,
                            epochs=epochs, lr=lr, min_hidden=min_hidden, seed=sample_seed, steps=steps)
    cfg = TrainConfig(
        epochs=chosen["epochs"], lr=chosen["lr"], momentum=momentum, batch_size=batch_size, depth=depth,
        balanced=chosen["balanced"] if balanced is None else balanced, min_hidden=chosen["min_hidden"], seed=seed, eval_batch_size=eval_batch_size,
    )
    if not isinstance(n_seeds, int) or isinstance(n_seeds, bool) or n_seeds < 1:
        raise AnnotatabilityInputError(f"n_seeds must be an integer >= 1, got {n_seeds!r}")
    record = [y] if y_other is None else [y, y_other]
    started = time.perf_counter()
    seeds = [cfg.seed + ENSEMBLE_SEED_STEP * s for s in range(n_seeds)]
    outs = []
    for s, member_seed in enumerate(seeds):
        gen = run(source, y, len(classes), replace(cfg, seed=member_seed), record=record, should_stop=should_stop)
        done = sum(o.trajectories[0].mean(axis=1, dtype=np.float64) for o in outs) if outs else 0.0
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                outs.append(stop.value)
                cfg = replace(cfg, lr=stop.value.lr)  # later members start from the rate that worked
                break
            if s:  # the live view shows the ensemble's running mean
                p = dataclasses.replace(p, epoch=s * cfg.epochs + p.epoch, n_epochs=n_seeds * cfg.epochs,
                                        confidence=((done + p.confidence) / (s + 1)).astype(np.float32))
            elif n_seeds > 1:
                p = dataclasses.replace(p, n_epochs=n_seeds * cfg.epochs)
            yield p
    out = outs[0]
    # ``lr`` is the rate that trained without diverging: every later training of the analysis reuses it
    params = {**cfg.as_dict(), "recipe": recipe, "derived": chosen["derived"],
              "layer": layer or "X", "device": str(dev), "n_features": int(source.n_vars),
              "hidden": [int(h) for h in out.model.sizes[1:-1]], "sparse_input": bool(getattr(X, "sparse", False) or sp.issparse(X)),
              "input": plan, "restarts": int(sum(o.restarts for o in outs))}
    if params["restarts"]:
        params["initial_lr"] = float(chosen["lr"])
    result = DynamicsResult(
        label_key=label_key,
        classes=[str(c) for c in classes],
        trajectory=out.trajectories[0],
        correct_count=out.correct_counts[0],
        margin_sum=out.margin_sums[0],
        params=params,
        seconds=time.perf_counter() - started,
        losses=out.losses,
        other_key=compare_key,
        other_trajectory=out.trajectories[1] if y_other is not None else None,
    )
    if n_seeds > 1:
        _average_members(result, outs, seeds)
    return result


#: seed ensemble members train with seed, seed + 100, seed + 200 ... (the out-of-sample folds use
#: seed + 1, seed + 2: no member shares a network with them)
ENSEMBLE_SEED_STEP = 100


def _average_members(result: DynamicsResult, outs: list, seeds: list[int]) -> None:
    """Turn ``result`` (the first member) into the seed ensemble of ``outs``.

    Per epoch, the trajectory is the members' mean probability, so confidence is the mean of
    their confidences; variability is the mean of their variabilities (the paper's meaning: how
    much one network's belief moves while it learns -- the std of the averaged trajectory would
    shrink with the ensemble); correctness and AUM are the members' means.
    """
    k = len(outs)
    result.trajectory = (sum(o.trajectories[0].astype(np.float64) for o in outs) / k).astype(np.float32)
    result.member_variability = sum(o.trajectories[0].std(axis=1, dtype=np.float64) for o in outs) / k
    result.correct_count = sum(o.correct_counts[0].astype(np.float64) for o in outs) / k
    result.margin_sum = sum(o.margin_sums[0].astype(np.float64) for o in outs) / k
    if result.other_trajectory is not None:
        result.other_trajectory = (sum(o.trajectories[1].astype(np.float64) for o in outs) / k).astype(np.float32)
    result.losses = [float(np.mean(ls)) for ls in zip(*(o.losses for o in outs))]
    result.params.update(n_seeds=k, seeds=[int(s) for s in seeds])


def training_dynamics(adata, label_key: str, *, progress: bool = False, copy: bool = False,
                      threads: int | None = None, **kwargs):
    """Score every cell by how hard its annotated label is to learn.

    Trains the published Annotatability classifier on ``adata.obs[label_key]`` and records,
    every epoch before that epoch's updates, the probability each cell gets for its annotated
    label.  Writes

    * ``obs['annot_confidence']`` -- mean of that probability over epochs,
    * ``obs['annot_variability']`` -- its population standard deviation,
    * ``obs['annot_correctness']`` -- fraction of epochs the label was the argmax,
    * ``obs['annot_aum']`` -- area under the margin (logit of the label minus the largest other),
    * ``obsm['annot_trajectory']`` -- the per-epoch probabilities (n_obs x epochs),
    * ``uns['annotatability']`` -- label key, classes, every hyper-parameter, device, seconds.

    Parameters
    ----------
    adata
        Expression (``X`` or ``layers[layer]``, dense or sparse CSR/CSC, or on disk): log-normalised,
        or raw counts / intensities that ``input="auto"`` transforms on the fly.
    label_key
        Column of ``adata.obs`` with the annotation to examine.
    recipe
        ``"adaptive"`` (default): the published optimiser and architecture, with epochs, learning
        rate and a hidden-width floor derived from the data (see :mod:`.recipes`);
        ``"published"``: the paper's recipe (100 epochs, lr 1e-3, no width floor).
    epochs, lr, min_hidden
        Override what the recipe chooses.  A run whose weights become non-finite restarts with
        ``lr / 4`` (at most 3 times, with a warning); ``params['lr']`` is the rate that worked,
        ``params['restarts']`` how many restarts it took.
    steps
        Step budget the epochs are derived from (default ``recipes.STEP_BUDGET``).
    input
        ``"auto"`` (default): detect what ``X`` holds (raw counts, log-normalised expression,
        intensities, scaled values; see :mod:`.inputs`) and hand the network a transformed copy of
        each batch -- counts normalised per cell, ``log1p`` and 2 000 highly variable genes,
        intensities ``log1p``, and every kind standardised per feature.  ``X`` is never modified.
        ``"as-is"``: train on ``X`` exactly as it is.  What was detected and done is recorded in
        ``uns['annotatability']['params']['input']``.
    standardize
        Standardise the features (None: the default of the detected kind with ``"auto"``, no
        with ``"as-is"``).
    momentum, batch_size, depth, balanced
        The published optimiser and architecture (SGD momentum 0.9, batch 256, depth 3,
        class-balanced sampling).  ``balanced`` may be a number ``p`` in [0, 1]: cells are drawn
        with probability proportional to ``count(class) ** -p`` (True = 1: class-balanced, the
        published sampler; False = 0: a shuffle); None (default): the recipe's (``recipes.BALANCE``
        for ``"adaptive"``, 1 for ``"published"``).
    layer
        Use ``adata.layers[layer]`` instead of ``X``.
    device
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"`` ...
    seed
        Seeds initialisation and sampling; the same seed gives the same scores.
    n_seeds
        Train a seed ensemble of this many networks (seeds ``seed``, ``seed + 100`` ...): the
        trajectory is their mean probability per epoch, confidence the mean of their
        confidences, variability the mean of their variabilities, correctness and AUM their
        means.  Costs ``n_seeds`` trainings; steadies the scores of small datasets.
    compare_key
        A second annotation of the same cells: its per-epoch probability under the same run
        is stored in ``obs['annot_other_confidence']``, ``obs['annot_other_variability']`` and
        ``obsm['annot_other_trajectory']`` (see :func:`compare_annotations`).
    progress
        Show a progress bar.
    threads
        CPU threads torch may use.  None (default): follow the machine -- one thread for small
        networks, and for larger ones the cores other processes leave free, re-measured as
        training runs (see :mod:`._threads`); ``NAPARI_ANNOTATABILITY_THREADS`` or
        ``OMP_NUM_THREADS`` fix it too.  Scores do not depend on it.
    copy
        Return a scored copy instead of writing into ``adata``.
    """
    target = adata.copy() if copy else adata
    gen = iter_training_dynamics(target, label_key, **kwargs)
    with requested_threads(threads), tqdm_callback(kwargs.get("epochs") or 1, "training", enabled=progress) as cb:
        result = drive(gen, cb)
    result.write(target)
    return target if copy else None


def compare_annotations(adata, label_key: str, other_key: str, **kwargs):
    """Training dynamics of two annotations of the same cells under one training run.

    The network is trained on ``label_key``; every epoch the probability of *both* the
    ``label_key`` label and the ``other_key`` label is recorded.  A cell whose second label
    is learnt with higher confidence than its first is one the second annotation fixes.
    Classes are the union of both columns' labels.  Keyword arguments as for
    :func:`training_dynamics`.
    """
    return training_dynamics(adata, label_key, compare_key=other_key, **kwargs)
