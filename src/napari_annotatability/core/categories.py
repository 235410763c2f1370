"""Correct / ambiguous / erroneous, with cut-offs given or calibrated by noise injection.

Two rules (``rule=``, see :mod:`.rules`): ``"calibrated"`` (default: label quality, and how
settled the network is about the cell) and ``"paper"`` (the published notebooks' rule on
confidence and variability).  One noise-injection run (:func:`calibrate_thresholds`)
calibrates the cut-offs of both; :func:`categorize` applies either to a scored AnnData.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from . import keys
from ._config import TrainConfig
from ._data import get_labels, resolve_device
from ._engine import EpochProgress, drive, run
from ._progress import tqdm_callback
from .errors import AnnotatabilityInputError
from .inputs import make_source
from .rules import (
    AMBIGUOUS_SECOND,
    AMBIGUOUS_VARIABILITY,
    ERRONEOUS_BAND_PRECISION,
    ERRONEOUS_PERCENTILE,
    ERRONEOUS_PRECISION,
    PAPER_CORRECT_CONFIDENCE,
    PAPER_CORRECT_VARIABILITY,
    RULES,
    apply_rule,
    categories_from_scores,
    categories_from_signals,
    check_rule,
    second_probability,
)

__all__ = [
    "flip_labels", "iter_calibrate_thresholds", "calibrate_thresholds", "categorize", "categories_from_scores", "auroc",
    "categories_from_signals", "second_probability", "RULES", "ERRONEOUS_PERCENTILE", "AMBIGUOUS_SECOND",
    "AMBIGUOUS_VARIABILITY",
]


#: the calibration run evaluates at least this many unflipped cells (all of them on smaller data)
CALIBRATION_OTHERS = 1000


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
    extra = {k: overrides.pop(k) for k in ("layer", "device", "input", "standardize") if k in overrides}
    for k in ("layer", "device"):
        extra.setdefault(k, stored.get(k, "X" if k == "layer" else "auto"))
    # the input plan of the last dynamics run (rebuilds its transform); a run of a version without
    # one trained on X as it is
    extra.setdefault("input", stored.get("input", "as-is" if stored else "auto"))
    unknown = set(overrides) - set(fields)
    if unknown:
        raise TypeError(f"unexpected training argument(s): {', '.join(sorted(unknown))}")
    base.update(overrides)
    layer = None if extra["layer"] in (None, "X") else extra["layer"]
    device = extra["device"]
    if isinstance(device, str) and device.startswith("cuda") and not torch.cuda.is_available():
        device = "auto"  # scores made on a GPU machine, recalibrated on a laptop
    return TrainConfig(**base), {"layer": layer, "device": device, "input": extra["input"],
                                 "standardize": extra.get("standardize")}


def _label_key(adata, label_key: str | None) -> str:
    if label_key is not None:
        return label_key
    try:
        return str(adata.uns[keys.UNS]["label_key"])
    except KeyError:
        raise AnnotatabilityInputError(
            "no label_key given and no earlier training_dynamics run recorded in uns['annotatability']"
        ) from None


def _oos_probabilities(adata, out_of_sample, n_classes: int, classes) -> np.ndarray | None:
    """The cross-fitted probabilities to calibrate the label-quality cut-off with, or None."""
    if isinstance(out_of_sample, str):
        if out_of_sample != "auto":
            raise AnnotatabilityInputError(f"out_of_sample must be 'auto', None, an OutOfSample or an array, "
                                           f"got {out_of_sample!r}")
        probs = adata.obsm[keys.OOS_PROBABILITIES] if keys.OOS_PROBABILITIES in adata.obsm else None
        stored = adata.uns.get(keys.UNS, {}).get("label_quality", {}).get("classes")
        if probs is None or stored is None or [str(c) for c in stored] != [str(c) for c in classes]:
            return None  # none from an earlier score of this annotation: no label-quality cut-off
    elif out_of_sample is None:
        return None
    else:
        probs = getattr(out_of_sample, "probabilities", out_of_sample)
    probs = np.asarray(probs, dtype=np.float64) if probs is not None else None
    if probs is None or probs.shape != (adata.n_obs, n_classes):
        raise AnnotatabilityInputError(
            f"out-of-sample probabilities must be n_obs x classes = ({adata.n_obs}, {n_classes}), got "
            f"{None if probs is None else probs.shape}"
        )
    return probs


def iter_calibrate_thresholds(
    adata,
    label_key: str | None = None,
    *,
    noise: float = 0.1,
    percentile: float = 90,
    out_of_sample="auto",
    quality_percentile: float = ERRONEOUS_PERCENTILE,
    confidence: np.ndarray | None = None,
    should_stop: Callable[[], bool] | None = None,
    **train_kwargs,
) -> Generator[EpochProgress, None, dict]:
    """Generator form of :func:`calibrate_thresholds`; returns the thresholds dict."""
    from .quality import label_quality

    for name, value in (("percentile", percentile), ("quality_percentile", quality_percentile)):
        if not 0 < value <= 100:
            raise AnnotatabilityInputError(f"{name} must be in (0, 100], got {value!r}")
    label_key = _label_key(adata, label_key)
    cfg, where = _train_config(adata, dict(train_kwargs))
    y, classes = get_labels(adata, label_key)
    probs = _oos_probabilities(adata, out_of_sample, len(classes), classes)
    reference = _quality_reference(adata, confidence, out_of_sample, probs, y) if probs is not None else None
    noisy, flipped = flip_labels(y, len(classes), noise, cfg.seed)
    source, _ = make_source(adata, where["layer"], resolve_device(where["device"]), where["input"],
                            standardize=where["standardize"], seed=cfg.seed)
    # the flipped cells' scores set the cut-offs, and the other cells' say how precise a level
    # is: evaluate the flipped cells and a seeded sample of the others, as many as were flipped
    # but at least CALIBRATION_OTHERS (on a few hundred cells, twenty unflipped ones each
    # standing for nine made the precision, and with it the cut-off, a matter of chance)
    rng = np.random.default_rng(cfg.seed)
    others = np.flatnonzero(~flipped)
    sample = rng.choice(others, min(others.size, max(int(flipped.sum()), CALIBRATION_OTHERS)), replace=False)
    evaluated = np.sort(np.concatenate([np.flatnonzero(flipped), sample]))
    out = yield from run(source, noisy, len(classes), cfg, eval_rows=evaluated, record=[noisy],
                         should_stop=should_stop)
    traj = out.trajectories[0][evaluated]
    conf = traj.mean(axis=1)
    var = traj.std(axis=1)
    flipped = flipped[evaluated]
    th = {
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
    if probs is not None:
        # a flipped cell's calibrated label quality: its in-sample confidence in this run (trained
        # on the flipped label) with the probability that a cross-fitted network, which never saw
        # the cell, gives the flipped label -- no extra training; other cells keep their own
        # label.  Both are ranked among the scored cells' own values, the scale of their quality
        lq = label_quality(conf, probs[evaluated, noisy[evaluated]], reference=reference).astype(np.float64)
        # the evaluated unflipped cells stand for all (n - n_flipped) of them
        weight = (y.size - flipped.sum()) / max(1, (~flipped).sum())
        cutoff, precision = erroneous_cutoff(lq[flipped], lq[~flipped], weight, quality_percentile)
        th.update({
            "label_quality": cutoff,
            "label_quality_precision": precision,
            "label_quality_min_precision": float(ERRONEOUS_PRECISION),
            "label_quality_band_precision": float(ERRONEOUS_BAND_PRECISION),
            "label_quality_percentile": float(quality_percentile),
            "label_quality_flipped_median": float(np.median(lq[flipped])),
            # the whole distribution (5th .. 95th percentile), to judge or re-derive the cut-off
            "label_quality_flipped_percentiles": [float(v) for v in np.percentile(lq[flipped], np.arange(5, 100, 5))],
            "label_quality_unflipped_median": float(np.median(lq[~flipped])) if (~flipped).any() else float("nan"),
            "label_quality_auroc": auroc(-lq, flipped),
        })
    return th


def _quality_reference(adata, confidence, out_of_sample, probs: np.ndarray,
                       y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scored cells' in-sample and out-of-sample confidence, which label quality ranks among."""
    if confidence is None:
        if keys.CONFIDENCE not in adata.obs:
            raise AnnotatabilityInputError(
                f"calibrating the label-quality cut-off needs the scored cells' in-sample confidence "
                f"(obs[{keys.CONFIDENCE!r}]): run training_dynamics or score first"
            )
        confidence = adata.obs[keys.CONFIDENCE].to_numpy()
    confidence = np.asarray(confidence, dtype=np.float64)
    if confidence.shape != (adata.n_obs,):
        raise AnnotatabilityInputError(f"confidence must have one value per cell ({adata.n_obs}), got shape "
                                       f"{confidence.shape}")
    # the out-of-sample confidence the scored cells' quality was made of, where it is at hand
    oos = getattr(out_of_sample, "confidence", None)
    if isinstance(out_of_sample, str) and keys.OOS_CONFIDENCE in adata.obs:
        oos = adata.obs[keys.OOS_CONFIDENCE].to_numpy()
    if oos is None:
        oos = probs[np.arange(y.size), y]  # the same average, from the probabilities
    return confidence, np.asarray(oos, dtype=np.float64)


def erroneous_cutoff(flipped_lq: np.ndarray, unflipped_lq: np.ndarray, unflipped_weight: float,
                     percentile: float = ERRONEOUS_PERCENTILE,
                     min_precision: float = ERRONEOUS_PRECISION,
                     band_precision: float = ERRONEOUS_BAND_PRECISION) -> tuple[float, float]:
    """The label-quality cut-off of ``rule="calibrated"`` from a noise-injection run.

    The ``percentile`` of the deliberately flipped cells' label quality, lowered until, in that
    run, the cells at or below it are deliberately flipped ones at least ``min_precision`` of the
    time (each unflipped cell counted ``unflipped_weight`` times, as it stands for that many).
    Where the network tells flipped labels apart well the percentile holds; where it cannot (a
    few hundred cells of many types) the cut-off falls instead of calling most cells erroneous.
    Then raised, up to the highest flipped cell, as long as the cells it adds are deliberately
    flipped ones at least ``band_precision`` of the time: where flipped and correct labels are
    apart, the cut-off moves into the gap between them instead of stopping inside the flipped
    cells' own spread.
    Returns ``(cutoff, precision at the cut-off)``; ``-inf`` when no level is precise enough.
    """
    f = np.sort(np.asarray(flipped_lq, dtype=np.float64))
    u = np.sort(np.asarray(unflipped_lq, dtype=np.float64))
    n_f = np.searchsorted(f, f, side="right")
    n_u = np.searchsorted(u, f, side="right") * float(unflipped_weight)
    precision = n_f / np.maximum(n_f + n_u, 1e-300)
    cap = float(np.percentile(f, percentile))
    ok = np.flatnonzero((f <= cap) & (precision >= min_precision))
    if ok.size == 0:
        return float("-inf"), float(precision[f <= cap].max()) if f.size else float("nan")
    k = ok[-1]
    # the band (f[k], f[j]] for every higher level j: is it mostly deliberately flipped cells?
    added_f, added_u = n_f - n_f[k], n_u - n_u[k]
    band = np.flatnonzero((np.arange(f.size) > k) & (added_f > 0)
                          & (added_f >= band_precision * np.maximum(added_f + added_u, 1e-300)))
    if band.size:
        k = band[-1]
    return float(f[k]), float(precision[k])


def calibrate_thresholds(
    adata,
    label_key: str | None = None,
    *,
    noise: float = 0.1,
    percentile: float = 90,
    out_of_sample="auto",
    quality_percentile: float = ERRONEOUS_PERCENTILE,
    progress: bool = False,
    **train_kwargs,
) -> dict:
    """Calibrate the erroneous cut-offs by injecting known label noise.

    Flips a seeded random ``noise`` fraction of labels to another class, retrains with the
    same recipe as the last :func:`training_dynamics` run (or ``train_kwargs``), and takes the
    ``percentile`` of the flipped cells' confidence and variability (the published recipe:
    10 % noise in the paper's notebooks, 90th percentile: the cut-offs of ``rule="paper"``).

    With the cross-fitted out-of-sample probabilities (``out_of_sample``) the same run also
    calibrates the label-quality cut-off of ``rule="calibrated"``: each flipped cell's label
    quality is ``label_quality(c, p)``, with ``c`` its in-sample confidence in this run and ``p``
    the probability a cross-fitted network that never saw the cell gives its flipped label, both
    ranked among the scored cells' own values (``obs['annot_confidence']`` and
    ``obs['annot_oos_confidence']``); the cut-off is the ``quality_percentile`` of those
    (``ERRONEOUS_PERCENTILE``, 75, by default), lowered where it is not precise enough
    (:func:`erroneous_cutoff`).

    Parameters
    ----------
    adata
        Scored by :func:`training_dynamics` (its recipe is reused) or :func:`score`.
    label_key
        The annotation; default the one of the last dynamics run.
    noise
        Fraction of labels flipped (seeded by the recipe's seed).
    percentile
        Percentile of the flipped cells' confidence and variability (``rule="paper"``).
    out_of_sample
        ``"auto"`` (default): ``obsm['annot_oos_probabilities']`` of an earlier :func:`score` of
        this annotation, when there is one; an :class:`~.quality.OutOfSample` or an
        ``n_obs x classes`` array; or None (no label-quality cut-off).
    quality_percentile
        Percentile of the flipped cells' label quality (``rule="calibrated"``).
    progress
        Show a progress bar.
    **train_kwargs
        Override the recipe of the last dynamics run.

    Returns
    -------
    dict
        The cut-offs (``confidence``, ``variability`` and, with out-of-sample probabilities,
        ``label_quality``), the calibration's settings, how well the run found the flipped
        cells (``flipped_auroc``: of confidence; ``label_quality_auroc``) and the median label
        quality of flipped and unflipped cells.  Also stored in
        ``uns['annotatability']['thresholds']``.
    """
    gen = iter_calibrate_thresholds(adata, label_key, noise=noise, percentile=percentile, out_of_sample=out_of_sample,
                                    quality_percentile=quality_percentile, **train_kwargs)
    with tqdm_callback(train_kwargs.get("epochs", 50), "calibrating", enabled=progress) as cb:
        th = drive(gen, cb)
    adata.uns.setdefault(keys.UNS, {})["thresholds"] = th
    return th


def write_categories(adata, categories: pd.Categorical, thresholds: dict) -> None:
    """Store categories, their colours and the cut-offs used."""
    adata.obs[keys.CATEGORY] = categories
    adata.uns[f"{keys.CATEGORY}_colors"] = list(keys.CATEGORY_COLORS)
    adata.uns.setdefault(keys.UNS, {})["thresholds"] = dict(thresholds)


_NO_QUALITY = ("run score with quality=True (CLI: drop --no-quality), or use rule='paper' (CLI: --rule paper)")


def categorize(
    adata,
    *,
    rule: str = "calibrated",
    quality_cutoff: float | None = None,
    ambiguous_second: float = AMBIGUOUS_SECOND,
    ambiguous_variability: float = AMBIGUOUS_VARIABILITY,
    conf_cutoff: float | None = None,
    var_cutoff: float | None = None,
    correct_conf: float = PAPER_CORRECT_CONFIDENCE,
    correct_var: float = PAPER_CORRECT_VARIABILITY,
) -> None:
    """Split cells into ``correct``, ``ambiguous`` and ``erroneous`` (``obs['annot_category']``).

    Works from the results of an earlier :func:`score` (or :func:`training_dynamics` and
    :func:`calibrate_thresholds` for the paper's rule); records the rule and every cut-off used
    in ``uns['annotatability']['thresholds']``.

    Parameters
    ----------
    adata
        Scored AnnData.
    rule
        ``"calibrated"`` (default): *erroneous* when the label quality
        (``obs['annot_label_quality']``) is at most ``quality_cutoff`` (calibrated by
        :func:`calibrate_thresholds`: probably mis-annotated); *ambiguous* when not erroneous but
        the cross-fitted networks split the cell between two classes (second most likely class at
        least :func:`~.rules.ambiguous_cutoff` of ``obsm['annot_oos_probabilities']``: the
        ``AMBIGUOUS_QUANTILE`` quantile over all cells, and at least ``ambiguous_second``) or,
        when ``ambiguous_variability`` is finite, the in-sample network keeps changing its mind;
        *correct* otherwise.
        ``"paper"``, as in the paper's notebooks: *erroneous* when confidence <= ``conf_cutoff``
        **and** variability <= ``var_cutoff`` (consistently not learnt); *correct* when
        confidence > ``correct_conf`` and variability < ``correct_var``; *ambiguous* otherwise.
    quality_cutoff
        ``rule="calibrated"``: a given label-quality cut-off (default: the calibrated one).
    ambiguous_second, ambiguous_variability
        ``rule="calibrated"``: see above.
    conf_cutoff, var_cutoff
        ``rule="paper"``: given cut-offs (default: the calibrated ones; give both or neither).
    correct_conf, correct_var
        ``rule="paper"``: the bounds of *correct*.
    """
    check_rule(rule)
    for k in (keys.CONFIDENCE, keys.VARIABILITY):
        if k not in adata.obs:
            raise AnnotatabilityInputError(f"obs[{k!r}] is missing: run training_dynamics first")
    stored = dict(adata.uns.get(keys.UNS, {}).get("thresholds", {}))
    for k in ("rule", "correct_confidence", "correct_variability", "ambiguous_second", "ambiguous_variability"):
        stored.pop(k, None)  # what the previous rule used, not a calibration result
    signals = {"confidence": adata.obs[keys.CONFIDENCE].to_numpy(), "variability": adata.obs[keys.VARIABILITY].to_numpy()}
    if rule == "paper":
        if quality_cutoff is not None:
            raise AnnotatabilityInputError("quality_cutoff is a cut-off of rule='calibrated'; rule='paper' takes "
                                           "conf_cutoff and var_cutoff")
        if conf_cutoff is None or var_cutoff is None:
            if "confidence" not in stored or "variability" not in stored:
                raise AnnotatabilityInputError(
                    "no cut-offs: pass conf_cutoff and var_cutoff, or run calibrate_thresholds first"
                )
            conf_cutoff = stored["confidence"] if conf_cutoff is None else conf_cutoff
            var_cutoff = stored["variability"] if var_cutoff is None else var_cutoff
        else:
            stored = {"method": "given"}
        stored.update(confidence=float(conf_cutoff), variability=float(var_cutoff))
    else:
        if conf_cutoff is not None or var_cutoff is not None:
            raise AnnotatabilityInputError(
                "conf_cutoff and var_cutoff are cut-offs of rule='paper': pass rule='paper', or quality_cutoff "
                "for rule='calibrated'"
            )
        if keys.LABEL_QUALITY not in adata.obs:
            raise AnnotatabilityInputError(
                f"rule='calibrated' needs obs[{keys.LABEL_QUALITY!r}], which this AnnData lacks: {_NO_QUALITY}"
            )
        if keys.OOS_PROBABILITIES not in adata.obsm:
            raise AnnotatabilityInputError(
                f"rule='calibrated' needs obsm[{keys.OOS_PROBABILITIES!r}] (the cross-fitted probabilities; scores "
                f"from an older version lack them): {_NO_QUALITY}"
            )
        if quality_cutoff is None:
            if "label_quality" not in stored:
                raise AnnotatabilityInputError(
                    "no label-quality cut-off: pass quality_cutoff, or calibrate it with calibrate_thresholds "
                    "after score (which reads the cross-fitted probabilities), or use rule='paper'"
                )
            quality_cutoff = stored["label_quality"]
        else:
            stored = {"method": "given"}
        stored.update(label_quality=float(quality_cutoff))
        signals.update(quality=adata.obs[keys.LABEL_QUALITY].to_numpy(),
                       probabilities=np.asarray(adata.obsm[keys.OOS_PROBABILITIES]))
    cats, used = apply_rule(rule, stored, ambiguous_second=ambiguous_second,
                            ambiguous_variability=ambiguous_variability, correct_conf=correct_conf,
                            correct_var=correct_var, **signals)
    write_categories(adata, cats, used)
