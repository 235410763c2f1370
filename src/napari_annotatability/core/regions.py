"""Summaries of a group of cells (a region drawn on the tissue, a lasso in the data map)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import keys
from ._data import get_matrix
from .errors import AnnotatabilityInputError
from .genes import _pearson_columns

__all__ = ["RegionSummary", "region_summary"]


@dataclass
class RegionSummary:
    """What a region holds: counts per category, label composition, mean scores, marker genes."""

    n_cells: int
    n_total: int
    #: category -> number of cells (every category, zeros included); empty before training
    categories: dict[str, int] = field(default_factory=dict)
    #: annotated label -> number of cells, most frequent first
    labels: dict[str, int] = field(default_factory=dict)
    #: suggested label -> number of cells, most frequent first (empty before label correction)
    suggested: dict[str, int] = field(default_factory=dict)
    mean_confidence: float = float("nan")
    mean_variability: float = float("nan")
    #: genes whose expression best marks the region against the other cells
    #: (columns ``gene``, ``r`` = correlation with the in-region indicator, ``mean_in``, ``mean_out``)
    top_genes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["gene", "r", "mean_in", "mean_out"]))

    def as_text(self) -> str:
        """A few lines for a terminal or a log."""
        lines = [f"{self.n_cells} of {self.n_total} cells"]
        if self.categories:
            lines.append("categories: " + ", ".join(f"{k} {v}" for k, v in self.categories.items()))
        if self.labels:
            lines.append("labels: " + ", ".join(f"{k} {v}" for k, v in list(self.labels.items())[:8]))
        if np.isfinite(self.mean_confidence):
            lines.append(f"mean confidence {self.mean_confidence:.3f}, mean variability {self.mean_variability:.3f}")
        if len(self.top_genes):
            lines.append("top genes: " + ", ".join(self.top_genes["gene"].astype(str)))
        return "\n".join(lines)


def _counts(series: pd.Series, mask: np.ndarray, order=None) -> dict[str, int]:
    vc = series[mask].astype(str).value_counts()
    if order is not None:
        return {str(c): int(vc.get(str(c), 0)) for c in order}
    return {str(k): int(v) for k, v in vc.items()}


def _as_mask(cells, n: int, what: str) -> np.ndarray:
    """A boolean mask over n cells from a mask or integer positions (named in errors as ``what``)."""
    cells = np.asarray(cells)
    if cells.dtype == bool:
        if cells.shape != (n,):
            raise AnnotatabilityInputError(f"the {what} mask has shape {cells.shape}, expected ({n},)")
        return cells
    if cells.size and (cells.min() < 0 or cells.max() >= n):
        raise AnnotatabilityInputError(f"{what} cell positions must lie in [0, {n}), got {cells.min()}..{cells.max()}")
    mask = np.zeros(n, dtype=bool)
    mask[cells.astype(np.int64)] = True
    return mask


def region_summary(
    adata,
    cells,
    *,
    label_key: str | None = None,
    n_genes: int = 10,
    layer: str | None = None,
    within=None,
) -> RegionSummary:
    """Summarise the cells ``cells`` (a boolean mask over ``adata.obs`` or integer positions).

    ``within`` (the same kinds; default: every cell) is what the region is part of and compared
    with -- the section it was drawn on when several sections share one AnnData: ``n_total``
    counts those cells and the marker genes contrast the region with the rest of them.

    ``label_key`` defaults to the annotation of the last training (``uns['annotatability']``).
    Marker genes are ranked by the Pearson correlation of their expression (``X`` or
    ``layers[layer]``, sparse-aware) with the in-region indicator -- the point-biserial
    correlation, a standardised in-versus-out difference -- and only positive ones are kept.
    No marker genes are computed for an empty region or one that holds every cell.
    """
    mask = _as_mask(cells, adata.n_obs, "region")
    universe = np.ones(adata.n_obs, dtype=bool) if within is None else _as_mask(within, adata.n_obs, "within")
    if (mask & ~universe).any():
        raise AnnotatabilityInputError(
            f"{int((mask & ~universe).sum())} cells of the region are not among the `within` cells it is part of")
    n = int(universe.sum())
    obs = adata.obs
    info = adata.uns.get(keys.UNS, {})
    if label_key is None and isinstance(info, dict):
        label_key = info.get("label_key")
    out = RegionSummary(n_cells=int(mask.sum()), n_total=int(n))
    if keys.CATEGORY in obs:
        out.categories = _counts(obs[keys.CATEGORY], mask, keys.CATEGORIES)
    if label_key is not None and label_key in obs:
        out.labels = _counts(obs[label_key], mask)
    if keys.SUGGESTED_LABEL in obs:
        out.suggested = _counts(obs[keys.SUGGESTED_LABEL], mask)
    if out.n_cells:
        if keys.CONFIDENCE in obs:
            out.mean_confidence = float(obs[keys.CONFIDENCE].to_numpy()[mask].mean())
        if keys.VARIABILITY in obs:
            out.mean_variability = float(obs[keys.VARIABILITY].to_numpy()[mask].mean())
    if 0 < out.n_cells < n and n_genes > 0:
        X = get_matrix(adata, layer)
        if n < adata.n_obs:  # only the cells the region is part of (no copy of X when that is all)
            rows = np.flatnonzero(universe)
            X, mask = X[rows], mask[rows]
        r = _pearson_columns(X, mask.astype(np.float64)[:, None])[:, 0]
        order = np.argsort(-r, kind="stable")[:n_genes]
        order = order[r[order] > 0]
        col_in = np.asarray(X[np.flatnonzero(mask)][:, order].mean(axis=0)).ravel()
        col_all = np.asarray(X[:, order].sum(axis=0)).ravel()
        col_out = (col_all - col_in * out.n_cells) / (n - out.n_cells)
        out.top_genes = pd.DataFrame({
            "gene": adata.var_names[order].astype(str),
            "r": r[order].astype(float),
            "mean_in": col_in.astype(float),
            "mean_out": col_out.astype(float),
        })
    return out
