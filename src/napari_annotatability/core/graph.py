"""The trainability-aware graph, its communities and an embedding -- sparse, at a million cells.

The paper's distance between cells *i* and *j* blends expression and learnability::

    D_ij = alpha * d_ij / mean(d) + (1 - alpha) * |r_i - r_j| / mean|r_i - r_j|

with ``d`` the Euclidean distance in ``use_rep`` (PCA) space and ``r`` the rank of confidence;
each cell keeps its ``n_neighbors`` smallest ``D`` and edges weigh ``exp(-D / mean(D))``.  The
published code builds ``D`` densely (n x n).  Here ``D`` is a metric (a sum of metrics), so an
approximate nearest-neighbour search (NN-descent, the algorithm of pynndescent that scanpy uses,
in :mod:`._nndescent`) searches it directly on the rows ``[a*x, c*s, b*r]`` with the metric
``||a dx|| + ||c ds|| + |b dr|``: every distance it compares is the exact ``D``.  That code is
numba-compiled once per machine and cached on disk, so a fresh process does not pay a
compilation (pynndescent's own NN-descent is compiled anew in every process: ~20-70 s).  It
collects ``n_candidates`` (default ``max(2 k, 30)``) per cell, of which the ``k`` smallest are kept.  Nothing n x n is ever built;
up to ``EXACT_SEARCH_MAX`` (20 000) cells the search is exact, in blocks of 512 rows.  (Euclidean candidates in the same space,
which bounds ``D`` within a factor sqrt(3), then exact re-ranking, agreed on only 94 % of edges at
5 000 cells against 99.9 % for the direct search.)

With ``spatial_weight = w > 0`` a spatial term joins the sum::

    D_ij += w * s_ij / mean(s)

with ``s`` the Euclidean distance between the cells' positions on the slide (``obsm['spatial']``),
so that neighbours -- and communities -- favour cells that touch on the tissue.

Normalisers follow the published code: ``mean(d)`` and ``mean(s)`` are over all n^2 pairs
(diagonal included; exact up to 20 000 cells, from 2 million seeded random pairs beyond),
``mean|r_i - r_j|`` is ``(n + 1) / 3`` (over distinct pairs) and ``mean(D)``, the weight scale, has
the closed form ``alpha + (1 - alpha)(n - 1)/n + w``.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np
import scipy.sparse as sp

from . import keys
from .errors import AnnotatabilityInputError

__all__ = ["trainability_graph", "communities", "trainability_umap", "blended_distance_scales", "mean_pairwise_distance"]

log = logging.getLogger(__name__)
_EXACT_MEAN_MAX = 20_000
#: up to this many cells the neighbours are found exactly, in dense blocks of 512 rows (cost n^2,
#: about a second at 15 000 cells, and no numba compilation); NN-descent above
EXACT_SEARCH_MAX = 20_000


def mean_pairwise_distance(X: np.ndarray, seed: int = 0, n_pairs: int = 2_000_000) -> float:
    """Mean Euclidean distance over all n^2 ordered pairs (diagonal zeros included).

    Exact (chunked, BLAS) up to 20 000 rows; estimated from ``n_pairs`` random pairs above.
    """
    n = X.shape[0]
    if n <= _EXACT_MEAN_MAX:
        import torch

        # centred first: the Gram-matrix form loses precision far from the origin
        T = torch.from_numpy(np.ascontiguousarray(X - X.mean(0), dtype=np.float32))
        sq = (T * T).sum(1)
        total = 0.0
        with torch.inference_mode():
            for s in range(0, n, 256):  # small tiles: each pass over a tile stays in cache
                d2 = torch.addmm(sq[None, :], T[s : s + 256], T.T, alpha=-2.0).add_(sq[s : s + 256, None])
                total += float(d2.clamp_(min=0).sqrt_().sum())  # float32 per tile, float64 across tiles
        return total / (n * n)
    X = np.asarray(X, dtype=np.float64)
    rng = np.random.default_rng(seed)
    total = 0.0
    for s in range(0, n_pairs, 100_000):  # chunks keep the gathered rows small
        m = min(100_000, n_pairs - s)
        i = rng.integers(0, n, m)
        j = rng.integers(0, n, m)
        total += np.sqrt(((X[i] - X[j]) ** 2).sum(1)).sum()  # i == j contributes 0, as on the diagonal
    return float(total / n_pairs)


def _ranks(conf: np.ndarray) -> np.ndarray:
    """Position of each cell in the (stable) ascending order of confidence, as published."""
    order = np.argsort(conf, kind="stable")
    r = np.empty(conf.size, dtype=np.float64)
    r[order] = np.arange(conf.size)
    return r


def blended_distance_scales(rep, conf, alpha, spatial=None, spatial_weight=0.0, seed=0) -> dict:
    """The coefficients that turn the blended distance into a sum of plain distances."""
    n = rep.shape[0]
    mean_d = mean_pairwise_distance(rep, seed)
    mean_r = (n + 1) / 3.0
    out = {
        "expression": alpha / mean_d if mean_d > 0 else 0.0,
        "rank": (1 - alpha) / mean_r,
        "spatial": 0.0,
        "mean_expression_distance": mean_d,
        "mean_rank_distance": mean_r,
        "weight_scale": alpha + (1 - alpha) * (n - 1) / n,
    }
    if spatial_weight > 0:
        mean_s = mean_pairwise_distance(spatial, seed + 1)
        out["spatial"] = spatial_weight / mean_s if mean_s > 0 else 0.0
        out["mean_spatial_distance"] = mean_s
        out["weight_scale"] += spatial_weight
    return out


def _representation(adata, use_rep: str, n_pcs: int, seed: int) -> np.ndarray:
    if use_rep in adata.obsm:
        rep = np.asarray(adata.obsm[use_rep], dtype=np.float64)
        return rep[:, :n_pcs] if n_pcs else rep
    if use_rep != "X_pca":
        raise AnnotatabilityInputError(f"obsm[{use_rep!r}] is missing (available: {', '.join(adata.obsm) or 'none'})")
    import scanpy as sc

    n_comps = min(n_pcs or 50, adata.n_vars - 1, adata.n_obs - 1)
    if n_comps < 1:
        raise AnnotatabilityInputError("too few cells or genes to compute a PCA")
    msg = f"obsm['X_pca'] is missing: computing a {n_comps}-component PCA of X (scanpy.pp.pca, seed {seed})"
    log.info(msg)
    warnings.warn(msg, UserWarning, stacklevel=3)
    sc.pp.pca(adata, n_comps=n_comps, random_state=seed)
    return np.asarray(adata.obsm["X_pca"], dtype=np.float64)


def trainability_graph(
    adata,
    *,
    alpha: float = 0.9,
    n_neighbors: int = 15,
    use_rep: str = "X_pca",
    n_pcs: int | None = 50,
    spatial_weight: float = 0.0,
    spatial_key: str = "spatial",
    n_candidates: int | None = None,
    seed: int = 0,
    n_jobs: int = -1,
) -> None:
    """Build the trainability-aware kNN graph (see the module docstring for the distance).

    Writes ``obsp['annot_connectivities']`` (weights ``exp(-D / mean D)``) and
    ``obsp['annot_distances']`` (``D``), both sparse CSR and symmetric (an edge kept by either
    end), and the parameters in ``uns['annotatability']['graph']``.  Needs
    ``obs['annot_confidence']``; computes a PCA if ``use_rep`` is ``X_pca`` and missing.
    ``n_jobs``: threads of the approximate search (-1: all); the graph is the same for any number.
    """
    if keys.CONFIDENCE not in adata.obs:
        raise AnnotatabilityInputError(f"obs[{keys.CONFIDENCE!r}] is missing: run training_dynamics first")
    if not 0 <= alpha <= 1:
        raise AnnotatabilityInputError(f"alpha must be in [0, 1], got {alpha!r}")
    if spatial_weight < 0:
        raise AnnotatabilityInputError(f"spatial_weight must be >= 0, got {spatial_weight!r}")
    n = adata.n_obs
    if not 1 <= n_neighbors < n:
        raise AnnotatabilityInputError(f"n_neighbors must be in [1, n_obs - 1] = [1, {n - 1}], got {n_neighbors!r}")
    t0 = time.perf_counter()
    conf = adata.obs[keys.CONFIDENCE].to_numpy(dtype=np.float64)
    if not np.isfinite(conf).all():
        raise AnnotatabilityInputError(f"obs[{keys.CONFIDENCE!r}] has NaN values")
    rep = _representation(adata, use_rep, n_pcs, seed)
    if not np.isfinite(rep).all():
        raise AnnotatabilityInputError(f"obsm[{use_rep!r}] has NaN or infinite values")
    spatial = None
    if spatial_weight > 0:
        if spatial_key not in adata.obsm:
            raise AnnotatabilityInputError(f"spatial_weight > 0 needs obsm[{spatial_key!r}] (cell positions)")
        spatial = np.asarray(adata.obsm[spatial_key], dtype=np.float64)[:, :2]
    scales = blended_distance_scales(rep, conf, alpha, spatial, spatial_weight, seed)
    r = _ranks(conf)
    # centred (distances do not change) so that float32 Gram-matrix distances stay accurate
    parts = [(rep - rep.mean(0)) * scales["expression"]]
    if spatial is not None:
        parts.append((spatial - spatial.mean(0)) * scales["spatial"])
    parts.append((r * scales["rank"])[:, None])
    Z = np.ascontiguousarray(np.hstack(parts), dtype=np.float32)
    n_space = 2 if spatial is not None else 0

    k = int(n_neighbors)
    n_cand = int(n_candidates or max(2 * k, 30))
    n_cand = min(n_cand, n - 1)
    idx, dist = _knn(Z, n_cand + 1, rep.shape[1], n_space, seed, n_jobs)
    # drop self, keep the k smallest exact distances
    rows = np.repeat(np.arange(n), idx.shape[1])
    flat_i, flat_d = idx.ravel(), dist.ravel()
    keep = (flat_i != rows) & (flat_i >= 0)
    order = np.lexsort((flat_d[keep], rows[keep]))
    rows_k, cols_k, d_k = rows[keep][order], flat_i[keep][order], flat_d[keep][order]
    starts = np.searchsorted(rows_k, np.arange(n))
    rank_in_row = np.arange(rows_k.size) - np.repeat(starts, np.diff(np.append(starts, rows_k.size)))
    top = rank_in_row < k
    rows_k, cols_k, d_k = rows_k[top], cols_k[top], d_k[top].astype(np.float64)

    D = sp.csr_matrix((d_k, (rows_k, cols_k)), shape=(n, n))
    D = D.maximum(D.T).tocsr()
    W = D.copy()
    W.data = np.exp(-W.data / scales["weight_scale"])
    D.sort_indices()
    W.sort_indices()
    adata.obsp[keys.DISTANCES] = D
    adata.obsp[keys.CONNECTIVITIES] = W
    info = adata.uns.setdefault(keys.UNS, {})
    info["graph"] = {
        "alpha": float(alpha), "n_neighbors": k, "use_rep": use_rep, "n_pcs": int(rep.shape[1]),
        "spatial_weight": float(spatial_weight), "spatial_key": spatial_key if spatial is not None else "",
        "n_candidates": n_cand, "seed": int(seed), "seconds": time.perf_counter() - t0,
        **{k2: float(v) for k2, v in scales.items()},
    }


def _knn(Z: np.ndarray, k: int, n_expr: int, n_space: int, seed: int, n_jobs: int):
    """k nearest neighbours (self included) of every row under the blended metric."""
    n = Z.shape[0]
    if n <= EXACT_SEARCH_MAX:
        return _exact_knn(Z, k, n_expr, n_space)
    from ._nndescent import nn_descent

    # NN-descent on the exact blended metric: every distance it compares is D itself.  Our own
    # (cached) numba code, not pynndescent's, whose NN-descent is recompiled in every process
    idx, dist = nn_descent(Z, k - 1, n_expr, n_space, seed, n_jobs=n_jobs)
    self_col = np.arange(n, dtype=np.int64)[:, None]
    return np.hstack([self_col, idx]), np.hstack([np.zeros((n, 1), dtype=dist.dtype), dist])


def _exact_knn(Z: np.ndarray, k: int, n_expr: int, n_space: int, block: int = 256):
    """Exact k nearest rows under the blended metric, in dense (block x n) float32 tiles.

    One GEMM per tile for each Euclidean part, then ``torch.topk``: well under a second at
    15 000 cells on 2 cores, memory ``block x n``.
    """
    import torch

    T = torch.from_numpy(np.ascontiguousarray(Z, dtype=np.float32))
    x = T[:, :n_expr]
    xsq = (x * x).sum(1)
    if n_space:
        s = T[:, n_expr : n_expr + n_space]
        ssq = (s * s).sum(1)
    r = T[:, -1]
    n = T.shape[0]
    idx = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k), dtype=np.float32)
    with torch.inference_mode():
        for a in range(0, n, block):
            b = min(n, a + block)
            d = torch.addmm(xsq[None, :], x[a:b], x.T, alpha=-2.0).add_(xsq[a:b, None]).clamp_(min=0).sqrt_()
            if n_space:
                d2 = torch.addmm(ssq[None, :], s[a:b], s.T, alpha=-2.0).add_(ssq[a:b, None]).clamp_(min=0)
                d.add_(d2.sqrt_())
            d.add_((r[a:b, None] - r[None, :]).abs_())
            d[torch.arange(b - a), torch.arange(a, b)] = 0.0  # self: exactly zero, found first
            vals, ind = torch.topk(d, k, dim=1, largest=False, sorted=True)
            idx[a:b] = ind.numpy()
            dist[a:b] = vals.numpy()
    return idx, dist


def communities(adata, *, resolution: float = 1.0, seed: int = 0, n_iterations: int = -1) -> None:
    """Leiden communities of the trainability-aware graph -> ``obs['annot_community']``.

    Runs :func:`scanpy.tl.leiden` (igraph's Leiden) on ``obsp['annot_connectivities']``, seeded;
    colours go to ``uns['annot_community_colors']``.
    """
    import scanpy as sc

    if keys.CONNECTIVITIES not in adata.obsp:
        raise AnnotatabilityInputError(f"obsp[{keys.CONNECTIVITIES!r}] is missing: run trainability_graph first")
    if not resolution > 0:
        raise AnnotatabilityInputError(f"resolution must be > 0, got {resolution!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.leiden(adata, resolution=resolution, random_state=seed, key_added=keys.COMMUNITY,
                     obsp=keys.CONNECTIVITIES, flavor="igraph", n_iterations=n_iterations, directed=False)
    cats = adata.obs[keys.COMMUNITY].cat.categories
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["tab20"]
    adata.uns[f"{keys.COMMUNITY}_colors"] = [to_hex(cmap(i % 20)) for i in range(len(cats))]
    adata.uns.setdefault(keys.UNS, {})["communities"] = {"resolution": float(resolution), "seed": int(seed),
                                                          "n_communities": int(len(cats))}


def trainability_umap(adata, *, min_dist: float = 0.5, seed: int = 0) -> None:
    """UMAP of the trainability-aware graph -> ``obsm['X_annot_umap']`` (scanpy's UMAP)."""
    import scanpy as sc

    if keys.CONNECTIVITIES not in adata.obsp:
        raise AnnotatabilityInputError(f"obsp[{keys.CONNECTIVITIES!r}] is missing: run trainability_graph first")
    graph = adata.uns.get(keys.UNS, {}).get("graph", {})
    key = "annot_neighbors"
    adata.uns[key] = {
        "connectivities_key": keys.CONNECTIVITIES,
        "distances_key": keys.DISTANCES,
        "params": {"n_neighbors": int(graph.get("n_neighbors", 15)), "method": "umap",
                   "use_rep": graph.get("use_rep", "X_pca"), "random_state": int(seed)},
    }
    previous = adata.obsm.get("X_umap")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.tl.umap(adata, min_dist=min_dist, random_state=seed, neighbors_key=key)
        adata.obsm[keys.UMAP] = adata.obsm["X_umap"]
    finally:
        del adata.uns[key]
        adata.uns.pop("umap", None)
        if previous is not None:
            adata.obsm["X_umap"] = previous
        else:
            adata.obsm.pop("X_umap", None)
