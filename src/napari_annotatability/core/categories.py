"""Correct / ambiguous / erroneous, with cut-offs given or calibrated by noise injection."""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from . import keys
from ._config import TrainConfig
from ._data import RowSource, get_labels, get_matrix, resolve_device
from ._engine import EpochProgress, drive, run
from ._progress import tqdm_callback
from .errors import AnnotatabilityInputError

__all__ = [
    "flip_labels", "iter_calibrate_thresholds", "calibrate_thresholds", "categorize", "categories_from_scores", "auroc",
]


def flip_labels(y: np.ndarray, n_classes: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flip a random ``fraction`` of labels to a uniformly chosen *other* class.

    Returns ``(noisy_labels, flipped_mask)``; at least one label is flipped.
    """
    if not 0 < fraction < 1:
        raise AnnotatabilityInputError(f"noise fraction must be in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    flipped = rng.random(y.size) < fraction
    if not flipped.any():
        flipped[rng.integers(y.size)] = True
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, n_classes, size=int(flipped.sum()))) % n_classes
    return noisy, flipped


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for detecting ``positives`` (Mann-Whitney U)."""
    positives = np.asarray(positives, dtype=bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _train_config(adata, overrides: dict) -> tuple[TrainConfig, dict]:
    """The training recipe of the last dynamics run, with ``overrides`` applied."""
    stored = dict(adata.uns.get(keys.UNS, {}).get("params", {}))
    fields = TrainConfig.__dataclass_fields__
    base = {k: (v.item() if hasattr(v, "item") else v) for k, v in stored.items() if k in fields}
    extra = {k: overrides.pop(k) for k in ("layer", "device") if k in overrides}
    for k in ("layer", "device"):
        extra.setdefault(k, stored.get(k, "X" if k == "layer" else "auto"))
    unknown = set(overrides) - set(fields)
    if unknown:
        raise TypeError(f"unexpected training argument(s): {', '.join(sorted(unknown))}")
    base.update(overrides)
    layer = None if extra["layer"] in (None, "X") else extra["layer"]
    device = extra["device"]
    if isinstance(device, str) and device.startswith("cuda") and not torch.cuda.is_available():
        device = "auto"  # scores made on a GPU machine, recalibrated on a laptop
    return TrainConfig(**base), {"layer": layer, "device": device}


def _label_key(adata, label_key: str | None) -> str:
    if label_key is not None:
        return label_key
    try:
        return str(adata.uns[keys.UNS]["label_key"])
    except KeyError:
        raise AnnotatabilityInputError(
            "no label_key given and no earlier training_dynamics run recorded in uns['annotatability']"
        ) from None


def iter_calibrate_thresholds(
    adata,
    label_key: str | None = None,
    *,
    noise: float = 0.1,
    percentile: float = 90,
    should_stop: Callable[[], bool] | None = None,
    **train_kwargs,
) -> Generator[EpochProgress, None, dict]:
    """Generator form of :func:`calibrate_thresholds`; returns the thresholds dict."""
    if not 0 < percentile <= 100:
        raise AnnotatabilityInputError(f"percentile must be in (0, 100], got {percentile!r}")
    label_key = _label_key(adata, label_key)
    cfg, where = _train_config(adata, dict(train_kwargs))
    y, classes = get_labels(adata, label_key)
    noisy, flipped = flip_labels(y, len(classes), noise, cfg.seed)
    source = RowSource(get_matrix(adata, where["layer"]), resolve_device(where["device"]))
    # only the flipped cells' scores set the cut-offs: evaluate them, and as many other cells
    # (seeded) for the AUROC of the run, not every cell every epoch
    rng = np.random.default_rng(cfg.seed)
    others = np.flatnonzero(~flipped)
    sample = rng.choice(others, min(others.size, int(flipped.sum())), replace=False)
    evaluated = np.sort(np.concatenate([np.flatnonzero(flipped), sample]))
    out = yield from run(source, noisy, len(classes), cfg, eval_rows=evaluated, record=[noisy],
                         should_stop=should_stop)
    traj = out.trajectories[0][evaluated]
    conf = traj.mean(axis=1)
    var = traj.std(axis=1)
    flipped = flipped[evaluated]
    return {
        "confidence": float(np.percentile(conf[flipped], percentile)),
        "variability": float(np.percentile(var[flipped], percentile)),
        "method": "noise injection",
        "noise": float(noise),
        "percentile": float(percentile),
        "seed": int(cfg.seed),
        "epochs": int(cfg.epochs),
        "n_flipped": int(flipped.sum()),
        "n_evaluated": int(evaluated.size),
        "flipped_auroc": auroc(-conf, flipped),
    }


def calibrate_thresholds(
    adata,
    label_key: str | None = None,
    *,
    noise: float = 0.1,
    percentile: float = 90,
    progress: bool = False,
    **train_kwargs,
) -> dict:
    """Calibrate the erroneous cut-offs by injecting known label noise.

    Flips a seeded random ``noise`` fraction of labels to another class, retrains with the
    same recipe as the last :func:`training_dynamics` run (or ``train_kwargs``), and takes the
    ``percentile`` of the flipped cells' confidence and variability (the published recipe:
    10 % noise in the paper's notebooks, 90th percentile).  Stores the cut-offs, and how well
    that run found the flipped cells (``flipped_auroc``), in
    ``uns['annotatability']['thresholds']`` and returns them.
    """
    gen = iter_calibrate_thresholds(adata, label_key, noise=noise, percentile=percentile, **train_kwargs)
    with tqdm_callback(train_kwargs.get("epochs", 50), "calibrating", enabled=progress) as cb:
        th = drive(gen, cb)
    adata.uns.setdefault(keys.UNS, {})["thresholds"] = th
    return th


def categories_from_scores(
    conf: np.ndarray,
    var: np.ndarray,
    conf_cutoff: float,
    var_cutoff: float,
    correct_conf: float = 0.95,
    correct_var: float = 0.15,
) -> pd.Categorical:
    """The paper's rule on arrays: see :func:`categorize`."""
    conf = np.asarray(conf)
    var = np.asarray(var)
    erroneous = (conf <= conf_cutoff) & (var <= var_cutoff)
    correct = ~erroneous & (conf > correct_conf) & (var < correct_var)
    cat = np.full(conf.shape, keys.CATEGORIES[1], dtype=object)
    cat[correct] = keys.CATEGORIES[0]
    cat[erroneous] = keys.CATEGORIES[2]
    return pd.Categorical(cat, categories=list(keys.CATEGORIES))


def write_categories(adata, categories: pd.Categorical, thresholds: dict) -> None:
    """Store categories, their colours and the cut-offs used."""
    adata.obs[keys.CATEGORY] = categories
    adata.uns[f"{keys.CATEGORY}_colors"] = list(keys.CATEGORY_COLORS)
    adata.uns.setdefault(keys.UNS, {})["thresholds"] = dict(thresholds)


def categorize(
    adata,
    *,
    conf_cutoff: float | None = None,
    var_cutoff: float | None = None,
    correct_conf: float = 0.95,
    correct_var: float = 0.15,
) -> None:
    """Split cells into ``correct``, ``ambiguous`` and ``erroneous`` (``obs['annot_category']``).

    As in the paper's notebooks: *erroneous* when confidence <= ``conf_cutoff`` **and**
    variability <= ``var_cutoff`` (consistently not learnt: probably mis-annotated);
    *correct* when confidence > ``correct_conf`` and variability < ``correct_var``;
    *ambiguous* otherwise.  Cut-offs default to the calibrated ones in
    ``uns['annotatability']['thresholds']`` (see :func:`calibrate_thresholds`).
    """
    for k in (keys.CONFIDENCE, keys.VARIABILITY):
        if k not in adata.obs:
            raise AnnotatabilityInputError(f"obs[{k!r}] is missing: run training_dynamics first")
    stored = dict(adata.uns.get(keys.UNS, {}).get("thresholds", {}))
    if conf_cutoff is None or var_cutoff is None:
        if "confidence" not in stored:
            raise AnnotatabilityInputError(
                "no cut-offs: pass conf_cutoff and var_cutoff, or run calibrate_thresholds first"
            )
        conf_cutoff = stored["confidence"] if conf_cutoff is None else conf_cutoff
        var_cutoff = stored["variability"] if var_cutoff is None else var_cutoff
    else:
        stored = {"method": "given"}
    cats = categories_from_scores(
        adata.obs[keys.CONFIDENCE].to_numpy(), adata.obs[keys.VARIABILITY].to_numpy(),
        conf_cutoff, var_cutoff, correct_conf, correct_var,
    )
    write_categories(adata, cats, {
        **stored,
        "confidence": float(conf_cutoff),
        "variability": float(var_cutoff),
        "correct_confidence": float(correct_conf),
        "correct_variability": float(correct_var),
    })
