"""Opt-in preprocessing as in the paper: log-normalise, keep highly variable genes."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._data import get_matrix, looks_like_counts
from .errors import AnnotatabilityInputError

__all__ = ["preprocess", "looks_like_counts"]


def preprocess(
    adata,
    *,
    n_top_genes: int = 2000,
    target_sum: float = 1e4,
    subset: bool = True,
    force: bool = False,
    copy: bool = False,
):
    """Normalise counts per cell, ``log1p``, and select highly variable genes.

    The paper trains on log-normalised expression of ~2-3 k highly variable genes.  This runs
    :func:`scanpy.pp.normalize_total` (``target_sum``), :func:`scanpy.pp.log1p` and
    :func:`scanpy.pp.highly_variable_genes` (``flavor='seurat'``, ``n_top_genes``), keeping
    only those genes when ``subset``.  Data with no more genes than ``n_top_genes`` keeps all.
    Refuses data that does not look like counts (already normalised or scaled) unless
    ``force``: normalising twice silently ruins the scores.
    """
    import scanpy as sc

    target = adata.copy() if copy else adata
    X = get_matrix(target)
    if not force and not looks_like_counts(X):
        raise AnnotatabilityInputError(
            "X does not look like raw counts (non-negative integers); it seems already normalised. "
            "Skip preprocessing, or pass force=True to normalise anyway"
        )
    if (X.data if sp.issparse(X) else np.asarray(X)).min() < 0:
        raise AnnotatabilityInputError("X has negative values; counts cannot be negative")
    sums = np.asarray(X.sum(axis=1)).ravel()
    if (sums == 0).any():
        raise AnnotatabilityInputError(
            f"{int((sums == 0).sum())} cells have no counts at all; filter them first "
            "(e.g. scanpy.pp.filter_cells(adata, min_counts=1))"
        )
    sc.pp.normalize_total(target, target_sum=target_sum)
    sc.pp.log1p(target)
    if target.n_vars > n_top_genes:
        sc.pp.highly_variable_genes(target, n_top_genes=n_top_genes, flavor="seurat", subset=subset)
    return target if copy else None
