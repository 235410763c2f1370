"""The whole analysis in one call, and a short text summary of it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import keys
from .categories import calibrate_thresholds, categorize
from .correction import suggest_labels
from .dynamics import training_dynamics
from .errors import AnnotatabilityInputError
from .genes import gene_association

__all__ = ["score", "summary", "suspicious_cells"]


def score(
    adata,
    label_key: str,
    *,
    calibrate: bool = True,
    noise: float = 0.1,
    percentile: float = 90,
    conf_cutoff: float | None = None,
    var_cutoff: float | None = None,
    correct: bool = True,
    genes: bool = True,
    progress: bool = False,
    **train_kwargs,
) -> None:
    """Training dynamics, categories, label correction and gene association in one call.

    ``train_kwargs`` go to :func:`training_dynamics` (epochs, lr, seed, device, depth ...)
    and the same recipe is reused for calibration and label correction.  Cut-offs come from
    ``conf_cutoff``/``var_cutoff`` when both are given, else from noise calibration
    (``calibrate``); with neither, no categories (and no label correction) are computed.
    """
    given = conf_cutoff is not None and var_cutoff is not None
    if (conf_cutoff is None) != (var_cutoff is None):
        raise AnnotatabilityInputError("give both conf_cutoff and var_cutoff, or neither")
    training_dynamics(adata, label_key, progress=progress, **train_kwargs)
    if given:
        categorize(adata, conf_cutoff=conf_cutoff, var_cutoff=var_cutoff)
    elif calibrate:
        calibrate_thresholds(adata, label_key, noise=noise, percentile=percentile, progress=progress)
        categorize(adata)
    if correct and keys.CATEGORY in adata.obs:
        suggest_labels(adata, label_key, progress=progress)
    if genes:
        gene_association(adata, layer=train_kwargs.get("layer"))


def suspicious_cells(adata, n: int = 10) -> pd.DataFrame:
    """The ``n`` cells with the lowest confidence, with their labels and suggestions."""
    info = adata.uns.get(keys.UNS, {})
    label_key = info.get("label_key")
    cols = {"cell": adata.obs_names}
    if label_key in adata.obs:
        cols["label"] = adata.obs[label_key].astype(str).to_numpy()
    for k, name in ((keys.CONFIDENCE, "confidence"), (keys.VARIABILITY, "variability"),
                    (keys.CATEGORY, "category"), (keys.SUGGESTED_LABEL, "suggested"),
                    (keys.SUGGESTED_PROB, "p_suggested")):
        if k in adata.obs:
            cols[name] = adata.obs[k].to_numpy()
    df = pd.DataFrame(cols)
    order = np.argsort(adata.obs[keys.CONFIDENCE].to_numpy(), kind="stable")[:n]
    return df.iloc[order].reset_index(drop=True)


def summary(adata, n: int = 10) -> str:
    """A few lines for a terminal: cells per category, cut-offs, the most suspicious cells."""
    info = adata.uns.get(keys.UNS, {})
    lines = [f"{adata.n_obs} cells, label {info.get('label_key')!r}, "
             f"{info.get('params', {}).get('epochs')} epochs in {info.get('seconds', float('nan')):.1f} s "
             f"on {info.get('params', {}).get('device')}"]
    if keys.CATEGORY in adata.obs:
        counts = adata.obs[keys.CATEGORY].value_counts()
        parts = [f"{c}: {int(counts.get(c, 0))} ({100 * counts.get(c, 0) / adata.n_obs:.1f} %)" for c in keys.CATEGORIES]
        lines.append("categories  " + ", ".join(parts))
        th = info.get("thresholds", {})
        if "confidence" in th:
            extra = f", flipped-label AUROC {th['flipped_auroc']:.3f}" if "flipped_auroc" in th else ""
            lines.append(f"cut-offs    confidence <= {th['confidence']:.3f} and variability <= "
                         f"{th['variability']:.3f} ({th.get('method', 'given')}{extra})")
    if keys.CONFIDENCE in adata.obs:
        df = suspicious_cells(adata, n)
        lines.append(f"the {len(df)} least confident cells:")
        lines.append(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return "\n".join(lines)
