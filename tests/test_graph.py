"""The trainability-aware graph: exact against a dense computation, sparse, symmetric, seeded."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_annotatability import core
from napari_annotatability.core import graph, keys


def _scored(n, d=20, seed=0, spatial=False):
    rng = np.random.default_rng(seed)
    rep = rng.normal(size=(n, d))
    rep[: n // 2] += 3
    a = ad.AnnData(np.zeros((n, 1), dtype=np.float32), obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]))
    a.obsm["X_pca"] = rep
    a.obs[keys.CONFIDENCE] = rng.random(n).astype(np.float32)
    if spatial:
        a.obsm["spatial"] = rng.random((n, 2)) * 1000
    return a


def _dense_reference(a, alpha=0.9, k=15, spatial_weight=0.0):
    """The published make_conf_graph distance, densely (n x n), plus the optional spatial term."""
    rep = a.obsm["X_pca"]
    n = a.n_obs
    dm = np.sqrt(((rep[:, None] - rep[None]) ** 2).sum(-1))
    conf = a.obs[keys.CONFIDENCE].to_numpy()
    pos = np.empty(n)
    pos[np.argsort(conf, kind="stable")] = np.arange(n)
    D = alpha * dm / dm.mean() + (1 - alpha) * np.abs(pos[:, None] - pos[None]) / ((n + 1) / 3)
    if spatial_weight:
        s = a.obsm["spatial"]
        ds = np.sqrt(((s[:, None] - s[None]) ** 2).sum(-1))
        D += spatial_weight * ds / ds.mean()
    np.fill_diagonal(D, np.inf)
    return np.argsort(D, 1, kind="stable")[:, :k], D


def _our_sets(a, k):
    W = a.obsp[keys.DISTANCES]
    out = []
    for i in range(a.n_obs):
        lo, hi = W.indptr[i], W.indptr[i + 1]
        out.append(set(W.indices[lo:hi][np.argsort(W.data[lo:hi], kind="stable")][:k]))
    return out


@pytest.mark.parametrize("spatial_weight", [0.0, 0.5])
def test_neighbours_equal_the_dense_computation(spatial_weight):
    a = _scored(1500, spatial=True)
    graph.trainability_graph(a, n_neighbors=10, spatial_weight=spatial_weight)
    ref, D = _dense_reference(a, k=10, spatial_weight=spatial_weight)
    ours = _our_sets(a, 10)
    agree = np.mean([len(o & set(r)) / 10 for o, r in zip(ours, ref)])
    assert agree > 0.999
    # weights are exp(-D / mean D) with D the exact blended distance
    W, Dist = a.obsp[keys.CONNECTIVITIES], a.obsp[keys.DISTANCES]
    i, j = Dist.nonzero()
    np.testing.assert_allclose(Dist[i, j].A1, D[i, j], rtol=1e-4)
    scale = a.uns[keys.UNS]["graph"]["weight_scale"]
    np.testing.assert_allclose(W[i, j].A1, np.exp(-D[i, j] / scale), rtol=1e-4)


@pytest.mark.slow
def test_approximate_search_agrees_with_the_dense_computation_at_5000_cells(monkeypatch):
    monkeypatch.setattr(graph, "EXACT_SEARCH_MAX", 1000)  # force NN-descent (used above 20 000 cells)
    a = _scored(5000, d=30)
    graph.trainability_graph(a, n_neighbors=15)
    ref, _ = _dense_reference(a, k=15)
    agree = np.mean([len(o & set(r)) / 15 for o, r in zip(_our_sets(a, 15), ref)])
    assert agree >= 0.99, agree


def test_approximate_search_with_the_spatial_term(monkeypatch):
    monkeypatch.setattr(graph, "EXACT_SEARCH_MAX", 1000)  # force NN-descent
    a = _scored(3000, spatial=True)
    graph.trainability_graph(a, n_neighbors=10, spatial_weight=0.5)
    ref, D = _dense_reference(a, k=10, spatial_weight=0.5)
    agree = np.mean([len(o & set(r)) / 10 for o, r in zip(_our_sets(a, 10), ref)])
    assert agree >= 0.99, agree
    i, j = a.obsp[keys.DISTANCES].nonzero()
    np.testing.assert_allclose(a.obsp[keys.DISTANCES][i, j].A1, D[i, j], rtol=1e-4)


def test_nn_descent_is_seeded_and_the_same_on_any_number_of_threads():
    from napari_annotatability.core._nndescent import nn_descent

    Z = np.random.default_rng(0).normal(size=(4000, 21)).astype(np.float32)
    one = nn_descent(Z, 15, 20, 0, seed=1, n_jobs=1)
    two = nn_descent(Z, 15, 20, 0, seed=1, n_jobs=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    assert (one[0] != np.arange(4000)[:, None]).all() and (np.diff(one[1], axis=1) >= 0).all()


def test_a_new_process_loads_nn_descent_from_the_cache_instead_of_compiling():
    """numba compiles NN-descent once per machine: a later process finds it in the on-disk cache."""
    import subprocess
    import sys

    from napari_annotatability.core._nndescent import nn_descent

    Z = np.random.default_rng(0).normal(size=(500, 11)).astype(np.float32)
    nn_descent(Z, 10, 10, 0)  # compiled (and cached) here, unless an earlier run did
    code = ("import numpy as np; from napari_annotatability.core import _nndescent as m; "
            "m.nn_descent(np.random.default_rng(0).normal(size=(500, 11)).astype(np.float32), 10, 10, 0); "
            "s = m._nn_descent.stats; print(sum(s.cache_hits.values()), sum(s.cache_misses.values()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    hits, misses = map(int, out.stdout.split())
    assert hits == 1 and misses == 0, out.stdout + out.stderr


def test_graph_is_sparse_symmetric_and_recorded():
    a = _scored(800)
    graph.trainability_graph(a, n_neighbors=12, seed=3)
    W = a.obsp[keys.CONNECTIVITIES]
    assert sp.isspmatrix_csr(W) or isinstance(W, sp.csr_array)
    assert (abs(W - W.T) > 1e-12).nnz == 0 and W.diagonal().sum() == 0
    assert W.nnz <= 2 * 12 * 800 and (W.getnnz(axis=1) >= 12).all()
    info = a.uns[keys.UNS]["graph"]
    assert info["n_neighbors"] == 12 and info["alpha"] == 0.9 and info["seed"] == 3


def test_alpha_one_is_the_expression_knn():
    a = _scored(600)
    graph.trainability_graph(a, n_neighbors=8, alpha=1.0)
    rep = a.obsm["X_pca"]
    d = np.sqrt(((rep[:, None] - rep[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    ref = np.argsort(d, 1)[:, :8]
    assert np.mean([len(o & set(r)) / 8 for o, r in zip(_our_sets(a, 8), ref)]) > 0.999


def test_spatial_term_makes_neighbours_closer_on_the_tissue():
    a = _scored(1000, spatial=True)
    mean_dist = {}
    for w in (0.0, 2.0):
        graph.trainability_graph(a, n_neighbors=10, spatial_weight=w)
        i, j = a.obsp[keys.DISTANCES].nonzero()
        mean_dist[w] = np.linalg.norm(a.obsm["spatial"][i] - a.obsm["spatial"][j], axis=1).mean()
    assert mean_dist[2.0] < 0.5 * mean_dist[0.0]


def test_missing_inputs_are_named(synthetic):
    with pytest.raises(core.AnnotatabilityInputError, match="training_dynamics"):
        graph.trainability_graph(synthetic)
    a = _scored(100)
    with pytest.raises(core.AnnotatabilityInputError, match="spatial"):
        graph.trainability_graph(a, spatial_weight=1.0)
    with pytest.raises(core.AnnotatabilityInputError, match="alpha"):
        graph.trainability_graph(a, alpha=1.5)
    with pytest.raises(core.AnnotatabilityInputError, match="n_neighbors"):
        graph.trainability_graph(a, n_neighbors=100)
    with pytest.raises(core.AnnotatabilityInputError, match="trainability_graph"):
        graph.communities(a)


def test_pca_is_computed_when_missing_with_a_message(synthetic):
    core.training_dynamics(synthetic, "label", epochs=2)
    with pytest.warns(UserWarning, match="computing a .*PCA"):
        graph.trainability_graph(synthetic, n_neighbors=10)
    assert "X_pca" in synthetic.obsm and keys.CONNECTIVITIES in synthetic.obsp


@pytest.mark.slow
def test_communities_and_embedding_are_seeded(synthetic):
    core.training_dynamics(synthetic, "label", epochs=5)
    graph.trainability_graph(synthetic, n_neighbors=10)
    graph.communities(synthetic, resolution=0.5, seed=1)
    first = synthetic.obs[keys.COMMUNITY].copy()
    graph.communities(synthetic, resolution=0.5, seed=1)
    assert synthetic.obs[keys.COMMUNITY].equals(first)
    assert isinstance(first.dtype, pd.CategoricalDtype) and first.nunique() > 1
    assert len(synthetic.uns[f"{keys.COMMUNITY}_colors"]) == first.nunique()
    graph.trainability_umap(synthetic, seed=0)
    emb = synthetic.obsm[keys.UMAP]
    assert emb.shape == (synthetic.n_obs, 2) and np.isfinite(emb).all()
    assert "X_umap" not in synthetic.obsm and "annot_neighbors" not in synthetic.uns


def _cluster_with_hard_substate(seed, n=2000, frac=0.3, shift=0.5):
    """Three cell types; 30 % of type A form a graded sub-state that is hard to learn.

    The sub-state sits a small step (0.25-0.75 within-type s.d., growing along a gradient t)
    away from the rest of A in expression -- too little for an expression kNN graph to set it
    apart -- and its annotation is inconsistent, more so further along (a random type with
    probability 0.6 + 0.4 t), so the network finds it hard to learn.  B and C are clean and
    clearly separated.
    """
    rng = np.random.default_rng(seed)
    latent, genes = 10, 100
    centres = rng.normal(0, 4.0, (3, latent))
    mid = (centres[1] + centres[2]) / 2
    u = (centres[2] - centres[1]) / np.linalg.norm(centres[2] - centres[1])
    centres[1], centres[2] = mid - 2.0 * u, mid + 2.0 * u
    true = rng.integers(0, 3, n)
    z = centres[true] + rng.normal(0, 1, (n, latent))
    label = true.copy()
    sub = np.zeros(n, dtype=bool)
    sub[rng.choice(np.flatnonzero(true == 0), int(frac * (true == 0).sum()), replace=False)] = True
    idx = np.flatnonzero(sub)
    direction = rng.normal(0, 1, latent)
    direction /= np.linalg.norm(direction)
    t = rng.uniform(0, 1, idx.size)
    z[idx] += shift * (0.5 + t)[:, None] * direction
    noisy = idx[rng.random(idx.size) < 0.6 + 0.4 * t]
    label[noisy] = rng.integers(0, 3, noisy.size)
    loadings = rng.normal(0, 1 / np.sqrt(latent), (latent, genes))
    X = np.maximum(z @ loadings + rng.normal(0, 0.5, (n, genes)), 0).astype(np.float32)
    obs = pd.DataFrame({"label": pd.Categorical(label.astype(str))}, index=[f"c{i}" for i in range(n)])
    return ad.AnnData(X=X, obs=obs), true, sub


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.slow
def test_communities_recover_a_hard_to_learn_substate_that_expression_misses(seed):
    """Ground truth: the trainability-aware graph's communities find the sub-state; kNN's do not.

    ARI of (sub-state vs the rest of its type) within that type.  The expression graph gets its
    best resolution of a sweep up to ~20 communities; the trainability-aware graph one setting.
    """
    import scanpy as sc
    from sklearn.metrics import adjusted_rand_score

    a, true, sub = _cluster_with_hard_substate(seed)
    core.training_dynamics(a, "label", recipe="published", epochs=50, seed=0)
    conf = a.obs[keys.CONFIDENCE].to_numpy()
    in_a = true == 0
    assert conf[sub].mean() < conf[in_a & ~sub].mean() - 0.25  # the sub-state is hard to learn
    sc.pp.pca(a, n_comps=30, random_state=0)

    plain = a.copy()
    sc.pp.neighbors(plain, n_neighbors=15, use_rep="X_pca", random_state=0)
    plain_ari = []
    for resolution in (0.2, 0.5, 1.0, 1.5, 2.0):
        sc.tl.leiden(plain, resolution=resolution, random_state=0, flavor="igraph", n_iterations=-1, key_added="c")
        plain_ari.append(adjusted_rand_score(sub[in_a], plain.obs["c"].to_numpy()[in_a]))

    graph.trainability_graph(a, alpha=0.8, n_neighbors=15, seed=0)
    graph.communities(a, resolution=0.2, seed=0)
    ours = adjusted_rand_score(sub[in_a], a.obs[keys.COMMUNITY].to_numpy()[in_a])
    print(f"seed {seed}: sub-state ARI within its type: trainability-aware {ours:.2f}, "
          f"expression kNN best of sweep {max(plain_ari):.2f}")
    assert ours > 0.4 and ours > max(plain_ari) + 0.3
