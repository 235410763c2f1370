"""The whole analysis in one call, and a short text summary of it."""

from __future__ import annotations

import dataclasses
import numbers
import textwrap
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import keys
from ._config import TrainConfig
from ._engine import EpochProgress, drive
from ._progress import stage_progress
from ._threads import requested_threads
from .categories import iter_calibrate_thresholds, write_categories
from .correction import iter_suggest_labels, write_suggestions
from .dynamics import DynamicsResult, iter_training_dynamics, require_finite
from .errors import AnnotatabilityInputError
from .genes import gene_scores, write_gene_scores
from .inputs import gene_matrix
from .quality import QUALITY_RECIPE, OutOfSample, iter_out_of_sample, label_quality
from .rules import (
    AMBIGUOUS_SECOND,
    AMBIGUOUS_VARIABILITY,
    ERRONEOUS_PERCENTILE,
    apply_rule,
    check_rule,
    describe_categories,
)

__all__ = ["ScoreResult", "iter_score", "score", "summary", "suspicious_cells"]


@dataclass
class ScoreResult:
    """Everything :func:`iter_score` computed, not yet written to the AnnData."""

    dynamics: DynamicsResult
    thresholds: dict | None = None
    categories: pd.Categorical | None = None
    suggestions: tuple | None = None  # (labels, probabilities, info)
    genes: tuple | None = None  # (n_genes x 3 scores, info)
    out_of_sample: OutOfSample | None = None
    # (the out-of-sample result it was computed from, the label quality): ranked once, for the
    # categories and for writing
    _quality: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def quality(self) -> np.ndarray | None:
        """The label quality of the scored cells; None without the out-of-sample check."""
        if self.out_of_sample is None:
            return None
        if self._quality is None or self._quality[0] is not self.out_of_sample:
            self._quality = (self.out_of_sample, label_quality(self.dynamics.confidence, self.out_of_sample.confidence))
        return self._quality[1]

    def write(self, adata) -> None:
        """Store every result under the contract keys (replacing those of an earlier run)."""
        quality = self.quality  # non-finite scores raise here, before anything is written
        if quality is not None:
            require_finite(quality, "label quality")
        self.dynamics.check_finite()
        self.dynamics.write(adata)
        if self.categories is not None:
            write_categories(adata, self.categories, self.thresholds or {})
        if self.suggestions is not None:
            write_suggestions(adata, self.dynamics.label_key, *self.suggestions)
        if self.genes is not None:
            write_gene_scores(adata, *self.genes)
        if self.out_of_sample is not None:
            oos = self.out_of_sample
            adata.obs[keys.OOS_CONFIDENCE] = oos.confidence
            adata.obs[keys.LABEL_QUALITY] = quality
            info = {"recipe": QUALITY_RECIPE, **oos.info, "classes": list(oos.classes)}
            if oos.probabilities is not None:
                adata.obsm[keys.OOS_PROBABILITIES] = oos.probabilities
            adata.uns[keys.UNS]["label_quality"] = info


def _staged(gen: Generator, stage: str):
    """Re-yield a training generator's progress tagged with its stage; return its value."""
    while True:
        try:
            progress = next(gen)
        except StopIteration as stop:
            return stop.value
        yield dataclasses.replace(progress, stage=stage)


def iter_score(
    adata,
    label_key: str,
    *,
    calibrate: bool = True,
    noise: float = 0.1,
    percentile: float = 90,
    conf_cutoff: float | None = None,
    var_cutoff: float | None = None,
    rule: str = "calibrated",
    quality_cutoff: float | None = None,
    quality_percentile: float = ERRONEOUS_PERCENTILE,
    ambiguous_second: float = AMBIGUOUS_SECOND,
    ambiguous_variability: float = AMBIGUOUS_VARIABILITY,
    correct: bool = True,
    correction: str = "auto",
    genes: bool = True,
    quality: bool = True,
    should_stop: Callable[[], bool] | None = None,
    **train_kwargs,
) -> Generator[EpochProgress, None, ScoreResult]:
    """Generator form of :func:`score`: yields progress of every training, returns the results.

    Only reads ``adata``; write the returned :class:`ScoreResult` with ``result.write(adata)``.
    The napari widget drives this in a worker thread.
    """
    if (conf_cutoff is None) != (var_cutoff is None):
        raise AnnotatabilityInputError("give both conf_cutoff and var_cutoff, or neither")
    check_rule(rule)
    for name, value in (("percentile", percentile), ("quality_percentile", quality_percentile)):
        if not isinstance(value, numbers.Real) or not 0 < value <= 100:  # fail before any training
            raise AnnotatabilityInputError(f"{name} must be in (0, 100], got {value!r}")
    if rule == "calibrated" and conf_cutoff is not None:
        raise AnnotatabilityInputError(
            "conf_cutoff and var_cutoff are cut-offs of rule='paper' (CLI: --rule paper); rule='calibrated' "
            "takes quality_cutoff (CLI: --quality-cutoff)"
        )
    if rule == "paper" and quality_cutoff is not None:
        raise AnnotatabilityInputError("quality_cutoff is a cut-off of rule='calibrated'; rule='paper' takes "
                                       "conf_cutoff and var_cutoff")
    given = conf_cutoff is not None or quality_cutoff is not None
    if rule == "calibrated" and not quality and (calibrate or given):
        raise AnnotatabilityInputError(
            "rule='calibrated' needs the label quality of the out-of-sample check: keep quality=True (drop "
            "--no-quality), or use rule='paper' (CLI: --rule paper)"
        )
    if correction not in ("auto", "cross-fit", "retrain"):
        raise AnnotatabilityInputError(f"correction must be 'auto', 'cross-fit' or 'retrain', got {correction!r}")
    if correction == "cross-fit" and not quality:
        raise AnnotatabilityInputError("correction='cross-fit' needs the out-of-sample check (quality=True)")
    if quality and 0 < adata.n_obs < 4:  # fail before the first training, not after it
        raise AnnotatabilityInputError(
            f"the out-of-sample check needs at least 4 cells, got {adata.n_obs}; skip it with quality=False "
            "(CLI: --no-quality)"
        )
    dyn = yield from _staged(
        iter_training_dynamics(adata, label_key, should_stop=should_stop, **train_kwargs), "training"
    )
    # every later training reuses the recipe this run resolved (epochs, lr, width floor ...)
    fields = TrainConfig.__dataclass_fields__
    recipe = {k: v for k, v in dyn.params.items() if k in fields}
    recipe.update(layer=train_kwargs.get("layer"), device=dyn.params["device"], input=dyn.params["input"])
    result = ScoreResult(dynamics=dyn)
    if quality:
        result.out_of_sample = yield from _staged(
            iter_out_of_sample(adata, label_key, should_stop=should_stop, **recipe), "cross-fitting"
        )
    conf, var = dyn.confidence, dyn.variability
    if conf_cutoff is not None:
        result.thresholds = {"method": "given", "confidence": float(conf_cutoff), "variability": float(var_cutoff)}
    elif quality_cutoff is not None:
        result.thresholds = {"method": "given", "label_quality": float(quality_cutoff)}
    elif calibrate:
        # one noise-injection run calibrates both rules' cut-offs (the label-quality one from the
        # cross-fitted probabilities, when the out-of-sample check ran)
        result.thresholds = yield from _staged(
            iter_calibrate_thresholds(adata, label_key, noise=noise, percentile=percentile,
                                      out_of_sample=result.out_of_sample, quality_percentile=quality_percentile,
                                      confidence=conf, should_stop=should_stop, **recipe),
            "calibrating",
        )
    if correct and result.out_of_sample is not None and correction != "retrain":
        oos = result.out_of_sample  # needs no categories: also without calibration
        labels = pd.Categorical.from_codes(oos.predicted, categories=oos.classes)
        result.suggestions = (labels, oos.predicted_prob, {"method": "cross-fitted", **oos.info})
    if result.thresholds is not None:
        signals = {"confidence": conf, "variability": var}
        if rule == "calibrated":
            signals.update(quality=result.quality, probabilities=result.out_of_sample.probabilities)
        result.categories, result.thresholds = apply_rule(
            rule, result.thresholds, ambiguous_second=ambiguous_second, ambiguous_variability=ambiguous_variability,
            **signals,
        )
        if correct and result.suggestions is None:
            result.suggestions = yield from _staged(
                iter_suggest_labels(adata, label_key, categories=result.categories,
                                    should_stop=should_stop, **recipe),
                "correcting",
            )
    if genes:
        scores, info = gene_scores(gene_matrix(adata, train_kwargs.get("layer"), dyn.params["input"]), conf)
        result.genes = (scores, {"layer": train_kwargs.get("layer") or "X", **info})
    return result


def score(
    adata,
    label_key: str,
    *,
    calibrate: bool = True,
    noise: float = 0.1,
    percentile: float = 90,
    conf_cutoff: float | None = None,
    var_cutoff: float | None = None,
    rule: str = "calibrated",
    quality_cutoff: float | None = None,
    quality_percentile: float = ERRONEOUS_PERCENTILE,
    ambiguous_second: float = AMBIGUOUS_SECOND,
    ambiguous_variability: float = AMBIGUOUS_VARIABILITY,
    correct: bool = True,
    correction: str = "auto",
    genes: bool = True,
    quality: bool = True,
    progress: bool = False,
    threads: int | None = None,
    **train_kwargs,
) -> None:
    """Training dynamics, label quality, categories, label correction and gene association.

    ``train_kwargs`` go to :func:`training_dynamics` (recipe, epochs, lr, seed, device, depth,
    layer, compare_key ...) and the recipe that run resolves is reused for the out-of-sample
    check, calibration and label correction.  With ``quality`` (default) a cross-fitted
    out-of-sample check writes ``obs['annot_oos_confidence']`` and ``obs['annot_label_quality']``
    (see :mod:`.quality`).  Suggested labels (``correct``) come, with ``correction="auto"``, from
    those cross-fitted networks -- each cell's suggestion is the most probable class of a network
    that never saw its label, at no extra training -- or, with ``correction="retrain"`` (and
    whenever ``quality`` is off), from the paper's retraining on the non-erroneous cells
    (:func:`suggest_labels`).
    Categories (``obs['annot_category']``) follow ``rule`` (see :func:`categorize`):
    ``"calibrated"`` (default) calls a cell *erroneous* when its label quality is at most the
    cut-off below which ``quality_percentile`` % of deliberately flipped labels fall,
    *ambiguous* when not erroneous but the cross-fitted networks split it between two classes
    (second most likely class >= ``ambiguous_second``) or its in-sample variability is
    >= ``ambiguous_variability``, and *correct* otherwise; it needs ``quality``.  ``"paper"``
    is the published notebooks' rule on confidence and variability.  Cut-offs are given
    (``quality_cutoff`` for ``"calibrated"``, ``conf_cutoff``/``var_cutoff`` for ``"paper"``) or
    else calibrated by noise injection (``calibrate``; one run gives both rules' cut-offs, so
    :func:`categorize` can switch rules afterwards without training); with neither there are no
    categories and no label correction.  Nothing is written to ``adata`` unless every step
    succeeds.  ``progress`` reports each training stage on stderr: a bar on a terminal, a line
    per 10 % of the stage when stderr is a log file or a pipe.  ``threads`` fixes torch's CPU
    threads (default: follow the machine's load, see :func:`training_dynamics`).
    """
    gen = iter_score(
        adata, label_key, calibrate=calibrate, noise=noise, percentile=percentile, conf_cutoff=conf_cutoff,
        var_cutoff=var_cutoff, rule=rule, quality_cutoff=quality_cutoff, quality_percentile=quality_percentile,
        ambiguous_second=ambiguous_second, ambiguous_variability=ambiguous_variability, correct=correct,
        correction=correction, genes=genes, quality=quality, **train_kwargs,
    )
    # one display per stage, closed when it ends
    with requested_threads(threads), stage_progress(enabled=progress) as show:
        result = drive(gen, show)
    result.write(adata)


def suspicious_cells(adata, n: int = 10) -> pd.DataFrame:
    """The ``n`` cells with the lowest label quality (else confidence), with labels and suggestions."""
    info = adata.uns.get(keys.UNS, {})
    label_key = info.get("label_key")
    cols = {"cell": adata.obs_names}
    if label_key in adata.obs:
        cols["label"] = adata.obs[label_key].astype(str).to_numpy()
    for k, name in ((keys.LABEL_QUALITY, "quality"), (keys.CONFIDENCE, "confidence"), (keys.VARIABILITY, "variability"),
                    (keys.CATEGORY, "category"), (keys.SUGGESTED_LABEL, "suggested"),
                    (keys.SUGGESTED_PROB, "p_suggested")):
        if k in adata.obs:
            cols[name] = adata.obs[k].to_numpy()
    df = pd.DataFrame(cols)
    rank_by = keys.LABEL_QUALITY if keys.LABEL_QUALITY in adata.obs else keys.CONFIDENCE
    order = np.argsort(adata.obs[rank_by].to_numpy(), kind="stable")[:n]
    return df.iloc[order].reset_index(drop=True)


def summary(adata, n: int = 10) -> str:
    """A few lines for a terminal: cells per category, cut-offs, the most suspicious cells."""
    info = adata.uns.get(keys.UNS, {})
    lines = [f"{adata.n_obs} cells, label {info.get('label_key')!r}, "
             f"{info.get('params', {}).get('epochs')} epochs in {info.get('seconds', float('nan')):.1f} s "
             f"on {info.get('params', {}).get('device')}"]
    if keys.CATEGORY in adata.obs:
        counts = adata.obs[keys.CATEGORY].value_counts()
        th = dict(info.get("thresholds", {}))
        rule = th.get("rule", "paper")
        how = {"calibrated": "label quality and how settled the network is",
               "paper": "the paper's, on confidence and variability"}.get(rule, rule)
        lines.append(f"categories (rule {rule!r}: {how}):")
        try:
            meaning = describe_categories(th, {c: int(counts.get(c, 0)) for c in keys.CATEGORIES})
        except KeyError:  # cut-offs not recorded: counts only
            meaning = {c: f"{c} {int(counts.get(c, 0))}" for c in keys.CATEGORIES}
        for c in ("erroneous", "ambiguous", "correct"):
            lines.append(textwrap.fill(meaning[c], width=100, initial_indent="  ", subsequent_indent="      "))
        if th.get("method") == "noise injection":
            cal = f"calibration: {100 * th.get('noise', 0.1):g} % of labels flipped on purpose"
            if "label_quality_auroc" in th:
                cal += (f"; label quality finds them with AUROC {th['label_quality_auroc']:.3f} (median "
                        f"{th['label_quality_flipped_median']:.2f} flipped, {th['label_quality_unflipped_median']:.2f} not)")
            if "flipped_auroc" in th:
                cal += f"; confidence with AUROC {th['flipped_auroc']:.3f}"
            lines.append(textwrap.fill(cal, width=100, subsequent_indent="    "))
    if keys.CONFIDENCE in adata.obs:
        df = suspicious_cells(adata, n)
        lines.append(f"the {len(df)} cells with the lowest label quality:" if keys.LABEL_QUALITY in adata.obs
                     else f"the {len(df)} least confident cells:")  # the order of suspicious_cells
        lines.append(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return "\n".join(lines)
