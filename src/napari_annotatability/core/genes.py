"""Genes associated with high, low and mid-range confidence."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import keys
from ._data import BackedMatrix, _backed_kind
from .errors import AnnotatabilityInputError
from .inputs import gene_matrix

__all__ = ["gene_association", "gene_scores", "top_genes", "mid_indicator", "expression"]


def mid_indicator(confidence: np.ndarray, mid_range: tuple[float, float] = (0.25, 0.75)) -> np.ndarray:
    """1.0 for cells whose confidence lies inside ``mid_range``, else 0.0.

    The published indicator (``mean +- var`` of confidences that were first divided by their
    sum) is a band of width ~1e-9 around the mean and is almost always all zeros; this one
    marks the cells the network is genuinely unsure about.
    """
    lo, hi = mid_range
    if not 0 <= lo < hi <= 1:
        raise AnnotatabilityInputError(f"mid_range must satisfy 0 <= low < high <= 1, got {mid_range!r}")
    return ((confidence >= lo) & (confidence <= hi)).astype(np.float64)


def _pearson_columns(X, targets: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Pearson correlation of every column of X (dense or sparse) with every target column.

    Computed from sums (X^T t, column sums and squared sums), never densifying a sparse X and
    reading a dense or on-disk X in row chunks, in float64.
    """
    n, g = X.shape
    t = targets - targets.mean(axis=0)
    t_sd = np.sqrt((t**2).mean(axis=0))
    if isinstance(X, BackedMatrix):
        xt, s1, s2 = np.zeros((g, t.shape[1])), np.zeros(g), np.zeros(g)
        for s, block in X.iter_blocks(chunk):
            if not sp.issparse(block):
                block = np.asarray(block, dtype=np.float64)
            xt += np.asarray(block.T @ t[s : s + block.shape[0]])
            s1 += np.asarray(block.sum(axis=0), dtype=np.float64).ravel()
            s2 += np.asarray((block.multiply(block) if sp.issparse(block) else block**2).sum(axis=0),
                             dtype=np.float64).ravel()
    elif sp.issparse(X):
        Xc = X.tocsr() if X.format != "csr" else X
        xt = np.asarray(Xc.T @ t)
        s1 = np.asarray(Xc.sum(axis=0)).ravel().astype(np.float64)
        s2 = np.asarray(Xc.multiply(Xc).sum(axis=0)).ravel().astype(np.float64)
    else:
        xt = np.zeros((g, t.shape[1]))
        s1 = np.zeros(g)
        s2 = np.zeros(g)
        for s in range(0, n, chunk):
            block = np.asarray(X[s : s + chunk], dtype=np.float64)
            xt += block.T @ t[s : s + chunk]
            s1 += block.sum(axis=0)
            s2 += (block**2).sum(axis=0)
    mean = s1 / n
    x_sd = np.sqrt(np.maximum(s2 / n - mean**2, 0.0))
    cov = xt / n  # t is centred, so E[x t] = cov(x, t)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = cov / (x_sd[:, None] * t_sd[None, :])
    r[~np.isfinite(r)] = 0.0  # constant gene or constant target: no association
    return np.clip(r, -1.0, 1.0)


def gene_association(
    adata,
    *,
    layer: str | None = None,
    mid_range: tuple[float, float] = (0.25, 0.75),
) -> None:
    """Score genes by how their expression tracks the cells' confidence.

    For every gene, the Pearson correlation of its expression with

    * ``annot_gene_high`` -- confidence (genes of easy-to-learn cells),
    * ``annot_gene_low`` -- 1 - confidence (genes of hard-to-learn cells),
    * ``annot_gene_mid`` -- an indicator of mid-range confidence (``mid_range``; genes of
      ambiguous cells: intermediate states, mixed spots).

    This is the published score (expression centred and normalised per gene, projected on the
    confidence vector) rescaled to a correlation in [-1, 1]: genes rank identically for high
    and low.  Uses ``adata.X`` (or ``layers[layer]``), dense or sparse, without densifying it;
    raw counts are first normalised per cell and log1p'd, intensities log1p'd, a block of rows at
    a time (as the last training's input plan says, see :func:`.inputs.gene_matrix`).
    """
    if keys.CONFIDENCE not in adata.obs:
        raise AnnotatabilityInputError(f"obs[{keys.CONFIDENCE!r}] is missing: run training_dynamics first")
    params = adata.uns.get(keys.UNS, {}).get("params", {})
    plan = params.get("input") if str(params.get("layer", "X")) == (layer or "X") else None
    X = gene_matrix(adata, layer, plan)
    scores, info = gene_scores(X, adata.obs[keys.CONFIDENCE].to_numpy(), mid_range)
    write_gene_scores(adata, scores, {"layer": layer or "X", **info})


def gene_scores(X, confidence: np.ndarray, mid_range: tuple[float, float] = (0.25, 0.75)):
    """``(n_genes x 3 array of high / low / mid correlations, info)`` for an expression matrix."""
    conf = np.asarray(confidence, dtype=np.float64)
    mid = mid_indicator(conf, mid_range)
    if mid.min() == mid.max():
        warnings.warn(
            f"no cell (or every cell) has confidence in {mid_range}: annot_gene_mid is all zeros",
            UserWarning,
            stacklevel=3,
        )
    r = _pearson_columns(X, np.column_stack([conf, 1.0 - conf, mid]))
    info = {"mid_range": [float(mid_range[0]), float(mid_range[1])], "n_mid_cells": int(mid.sum())}
    return r.astype(np.float32), info


def write_gene_scores(adata, scores: np.ndarray, info: dict) -> None:
    adata.var[keys.GENE_HIGH] = scores[:, 0]
    adata.var[keys.GENE_LOW] = scores[:, 1]
    adata.var[keys.GENE_MID] = scores[:, 2]
    adata.uns.setdefault(keys.UNS, {})["genes"] = dict(info)


def top_genes(adata, which: str = "low", n: int = 20) -> pd.DataFrame:
    """The ``n`` genes with the highest ``high`` / ``low`` / ``mid`` association score."""
    col = {"high": keys.GENE_HIGH, "low": keys.GENE_LOW, "mid": keys.GENE_MID}.get(which)
    if col is None:
        raise AnnotatabilityInputError(f"which must be 'high', 'low' or 'mid', got {which!r}")
    if col not in adata.var:
        raise AnnotatabilityInputError(f"var[{col!r}] is missing: run gene_association first")
    s = adata.var[col].sort_values(ascending=False).head(n)
    return pd.DataFrame({"gene": s.index, "score": s.to_numpy()})


def expression(adata, gene: str, layer: str | None = None) -> np.ndarray:
    """Expression of one gene in every cell (float64), from ``X`` or ``layers[layer]``."""
    if gene not in adata.var_names:
        raise AnnotatabilityInputError(f"gene {gene!r} is not in var_names")
    j = int(np.flatnonzero(adata.var_names == gene)[0])  # the first one if names repeat
    X = adata.X if layer is None else adata.layers[layer]
    kind = _backed_kind(X)
    if kind in ("csr", "dense"):  # on disk: one column, read a block of rows at a time
        blocks = BackedMatrix(X, kind).iter_blocks()
        parts = [b[:, j].toarray().ravel() if sp.issparse(b) else np.asarray(b[:, j]) for _, b in blocks]
        return np.concatenate(parts).astype(np.float64)
    col = X[:, j]
    if sp.issparse(col):
        col = col.toarray()
    return np.asarray(col, dtype=np.float64).ravel()
