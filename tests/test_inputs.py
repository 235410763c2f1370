"""Input kinds, the on-the-fly input transform, divergence restarts and the finite-score guard."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from napari_annotatability import cli, core
from napari_annotatability.core import inputs, keys
from napari_annotatability.core._config import TrainConfig
from napari_annotatability.core._data import RowSource
from napari_annotatability.core._engine import drive, run
from napari_annotatability.core.recipes import LR_GAIN, LR_RANGE, mean_square_norm

CPU = torch.device("cpu")


def _counts(n=240, g=60, k=3, scale=1.0, seed=0, sparse=False):
    """Poisson counts of ``k`` cell types with varying library sizes."""
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, k, n)
    mu = rng.gamma(0.5, 4.0, (k, g)) * scale
    X = rng.poisson(mu[lab] * rng.uniform(0.5, 2.0, (n, 1))).astype(np.float32)
    X[:, 0] += 1  # no cell without counts
    a = ad.AnnData(sp.csr_matrix(X) if sparse else X)
    a.var_names = [f"g{j}" for j in range(g)]
    a.obs["label"] = pd.Categorical([f"t{i}" for i in lab])
    return a


def _scanpy_reference(X, *, scale=True, hvg=None):
    import scanpy as sc

    ref = ad.AnnData(np.array(X, dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.normalize_total(ref, target_sum=1e4)
        sc.pp.log1p(ref)
        if hvg is not None:
            sc.pp.highly_variable_genes(ref, n_top_genes=hvg, flavor="seurat", subset=True)
        if scale:
            sc.pp.scale(ref, max_value=10)
    return ref


def _auto(adata, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", core.RawCountsWarning)
        return inputs.make_source(adata, None, CPU, "auto", **kw)


# -- detection ------------------------------------------------------------------------------
def test_kinds_are_detected():
    rng = np.random.default_rng(0)
    counts = _counts().X
    lognorm = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    intens = rng.lognormal(6, 1, (300, 20)).astype(np.float32)  # e.g. raw marker intensities
    scaled = rng.normal(0, 1, (300, 20)).astype(np.float32)
    binary = (rng.random((300, 20)) < 0.3).astype(np.float32)
    tiny = rng.random((300, 20)).astype(np.float32) * 1e-8
    for X, kind in ((counts, "counts"), (lognorm, "log-normalised"), (intens, "intensities"), (scaled, "scaled"),
                    (binary, "binary"), (tiny, "log-normalised")):
        got, stats = inputs.detect_kind(X)
        assert got == kind, (kind, stats)
        assert inputs.detect_kind(sp.csr_matrix(X))[0] == kind  # sparse alike
        for key in ("n_rows", "min", "max", "integer", "fraction_nonzero", "tail_ratio", "mean_square_norm"):
            assert key in stats
    # a heavy right tail below INTENSITY_MAX is intensities too
    tail = rng.lognormal(0, 2.5, (300, 20)).astype(np.float32)
    tail = np.minimum(tail, 90).astype(np.float32)
    assert inputs.detect_kind(tail)[0] == "intensities"
    # after the paper's preprocessing, counts are log-normalised
    a = _counts(g=30)
    core.preprocess(a, n_top_genes=20)
    assert inputs.detect_kind(a.X)[0] == "log-normalised"


def test_plans_by_kind():
    a = _counts()
    plan = inputs.resolve_input(a.X, a.var_names, "auto")  # counts: normalised and log1p-ed, not standardised
    assert plan["kind"] == "counts" and plan["steps"] == ["normalize_total", "log1p"]
    assert plan["target_sum"] == 1e4 and not plan["standardize"]
    std = inputs.resolve_input(a.X, None, "auto", standardize=True)
    assert std["steps"] == ["normalize_total", "log1p", "standardize"] and std["clip"] == 10.0
    asis = inputs.resolve_input(a.X, None, "as-is")
    assert asis["steps"] == [] and asis["kind"] == "counts" and not asis["standardize"]
    assert inputs.resolve_input(a.X, None, "as-is", standardize=True)["steps"] == ["standardize"]
    intens = np.random.default_rng(0).lognormal(6, 1, (50, 5))
    assert inputs.resolve_input(intens, None, "auto")["steps"] == ["log1p", "standardize"]
    with pytest.raises(core.AnnotatabilityInputError, match="input must be"):
        inputs.resolve_input(a.X, None, "raw")
    with pytest.raises(core.AnnotatabilityInputError, match="standardize"):
        inputs.resolve_input(a.X, None, "auto", standardize="yes")


# -- the transform equals scanpy's ----------------------------------------------------------
@pytest.mark.parametrize("sparse", [False, True])
def test_transform_equals_scanpy_normalize_log1p_scale(sparse):
    a = _counts(sparse=sparse)
    X = a.X.toarray() if sparse else a.X
    ref = _scanpy_reference(X)
    source, plan = _auto(a, standardize=True)
    rows = np.array([0, 5, 17, 239])
    got = source.take(torch.from_numpy(rows)).numpy()
    np.testing.assert_allclose(got, ref.X[rows], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(source.slice(3, 9).numpy(), ref.X[3:9], rtol=1e-4, atol=1e-4)
    # without standardisation: normalize_total + log1p
    source, _ = _auto(a, standardize=False)
    np.testing.assert_allclose(source.take(torch.from_numpy(rows)).numpy(), _scanpy_reference(X, scale=False).X[rows],
                               rtol=1e-5, atol=1e-5)
    # the user's matrix is read only
    np.testing.assert_array_equal(a.X.toarray() if sparse else a.X, X)


def test_counts_with_many_genes_keep_the_highly_variable_ones():
    a = _counts(n=150, g=inputs.N_TOP_GENES + 100, k=3, seed=1, sparse=True)
    ref = _scanpy_reference(a.X.toarray(), hvg=inputs.N_TOP_GENES)
    source, plan = _auto(a, standardize=True)
    assert plan["steps"] == ["normalize_total", "log1p", "highly_variable_genes", "standardize"]
    assert plan["n_top_genes"] == inputs.N_TOP_GENES and source.n_vars == len(plan["genes"])
    assert plan["genes"] == [f"g{j}" for j in ref.var_names]
    np.testing.assert_allclose(source.slice(0, 10).numpy(), ref.X[:10], rtol=1e-4, atol=1e-4)


def test_constant_features_and_cells_without_counts_stay_finite():
    a = _counts()
    X = a.X.copy()
    X[:, 3] = 0  # a gene never seen
    X[7] = 0  # a cell without counts
    a.X = X
    source, plan = _auto(a)
    batch = source.slice(0, a.n_obs).numpy()
    assert np.isfinite(batch).all() and np.abs(batch).max() <= 10
    assert np.all(batch[:, 3] == 0)  # constant: centred, std 1


# -- every path gives the same scores -------------------------------------------------------
def test_dense_sparse_and_backed_give_the_same_scores(tmp_path):
    dense = _counts(n=150, g=inputs.N_TOP_GENES + 50, seed=2)  # exercises the gene subset too
    sparse = dense.copy()
    sparse.X = sp.csr_matrix(sparse.X)
    sparse.write_h5ad(tmp_path / "s.h5ad")
    dense.write_h5ad(tmp_path / "d.h5ad")
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", core.RawCountsWarning)
        for a in (dense, sparse, ad.read_h5ad(tmp_path / "s.h5ad", backed="r"),
                  ad.read_h5ad(tmp_path / "d.h5ad", backed="r")):
            res = drive(core.iter_training_dynamics(a, "label", epochs=3, seed=0, device="cpu"))
            results.append(res)
    for res in results[1:]:
        np.testing.assert_array_equal(results[0].trajectory, res.trajectory)
        assert res.params["input"]["genes"] == results[0].params["input"]["genes"]


# -- scale: all scores finite, or a clear error ---------------------------------------------
def _all_finite(adata):
    for k in (*keys.SCORE_COLUMNS, keys.LABEL_QUALITY, keys.OOS_CONFIDENCE):
        assert np.isfinite(adata.obs[k].to_numpy()).all(), k


def test_huge_raw_counts_give_finite_scores_and_a_warning():
    a = _counts(n=184, g=200, scale=3000, seed=3)
    X = a.X.copy()
    X[:, :3] *= 30  # max ~1e5
    a.X = X
    assert X.max() > 5e4 and mean_square_norm(X) > 1e8
    before = a.X.copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        core.score(a, "label", epochs=4, seed=0)
    raw = [w for w in caught if issubclass(w.category, core.RawCountsWarning)]
    assert len(raw) == 1 and "input='as-is'" in str(raw[0].message)  # says what was done and how to opt out
    np.testing.assert_array_equal(a.X, before)
    _all_finite(a)
    params = a.uns[keys.UNS]["params"]
    assert params["input"]["kind"] == "counts" and params["input"]["mode"] == "auto"
    # the learning rate follows the transformed input (log-normalised: each of the 200 features
    # is log1p of at most 1e4), not the raw counts' mean |x|^2 > 1e8
    assert 1.0 < params["derived"]["mean_square_norm"] < 200 * np.log1p(1e4) ** 2
    assert params["lr"] == pytest.approx(np.clip(LR_GAIN / params["derived"]["mean_square_norm"], *LR_RANGE))
    assert np.isfinite(a.var[keys.GENE_HIGH]).all()


def test_tiny_values_and_a_class_of_two_cells_give_finite_scores():
    rng = np.random.default_rng(4)
    lab = np.repeat([0, 1, 2], [100, 98, 2])
    centres = rng.random((3, 15))
    X = ((centres[lab] + 0.3 * rng.random((200, 15))) * 1e-8).astype(np.float32)
    a = ad.AnnData(X)
    a.obs["label"] = pd.Categorical([f"t{i}" for i in lab])
    core.score(a, "label", epochs=4, seed=0)
    _all_finite(a)
    assert a.uns[keys.UNS]["params"]["input"]["kind"] == "log-normalised"


def test_the_raw_counts_warning_of_as_is_is_the_old_one():
    a = _counts()
    with pytest.warns(core.RawCountsWarning, match="preprocess") as caught:
        core.training_dynamics(a, "label", epochs=1, input="as-is")
    assert len([w for w in caught if issubclass(w.category, core.RawCountsWarning)]) == 1
    assert a.uns[keys.UNS]["params"]["input"]["steps"] == []


# -- divergence -----------------------------------------------------------------------------
def _gaussian(scale, n=200, g=20, seed=0):
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, 3, n)
    X = ((rng.normal(0, 1, (3, g))[lab] + rng.normal(0, 1, (n, g))) * scale).astype(np.float32)
    a = ad.AnnData(X)
    a.obs["label"] = pd.Categorical([f"t{i}" for i in lab])
    return a


def test_a_diverging_run_restarts_with_a_smaller_learning_rate():
    a = _gaussian(1.0)
    with pytest.warns(core.DivergenceWarning, match="restarting"):
        core.training_dynamics(a, "label", epochs=5, lr=1e3, input="as-is", seed=0)
    params = a.uns[keys.UNS]["params"]
    assert 1 <= params["restarts"] <= 3 and params["initial_lr"] == 1e3
    assert params["lr"] == pytest.approx(1e3 / 4 ** params["restarts"])
    assert np.isfinite(a.obs[keys.CONFIDENCE]).all()
    # the generator keeps yielding progress across the restart: epochs count from 1 again
    epochs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", core.DivergenceWarning)
        gen = core.iter_training_dynamics(a, "label", epochs=5, lr=1e3, input="as-is", seed=0)
        while True:
            try:
                epochs.append(next(gen).epoch)
            except StopIteration:
                break
    assert epochs[-5:] == [1, 2, 3, 4, 5] and len(epochs) > 5 and epochs.count(1) == params["restarts"] + 1


def test_an_unrecoverable_divergence_is_a_clear_error():
    a = _gaussian(1e4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", core.DivergenceWarning)
        with pytest.raises(core.TrainingDiverged, match="input='auto'") as err:
            core.training_dynamics(a, "label", epochs=5, lr=1e3, input="as-is", seed=0)
    assert "|x|" in str(err.value) and keys.CONFIDENCE not in a.obs
    # the same data with the default input transform trains
    core.training_dynamics(a, "label", epochs=5, seed=0)
    assert np.isfinite(a.obs[keys.CONFIDENCE]).all() and a.uns[keys.UNS]["params"]["input"]["kind"] == "scaled"


def test_non_finite_scores_are_never_written():
    a = _gaussian(1.0)
    res = drive(core.iter_training_dynamics(a, "label", epochs=2, seed=0))
    res.trajectory[3, 1] = np.nan
    with pytest.raises(core.TrainingDiverged, match="non-finite confidence"):
        res.write(a)
    assert keys.CONFIDENCE not in a.obs


# -- records, round trips, the old behaviour ------------------------------------------------
def test_the_input_plan_survives_h5ad_and_rebuilds_the_same_transform(tmp_path):
    a = _counts(n=150, g=inputs.N_TOP_GENES + 30, seed=5, sparse=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", core.RawCountsWarning)
        core.training_dynamics(a, "label", epochs=2, seed=0)
    plan = a.uns[keys.UNS]["params"]["input"]
    a.write_h5ad(tmp_path / "a.h5ad")
    b = ad.read_h5ad(tmp_path / "a.h5ad")
    stored = b.uns[keys.UNS]["params"]["input"]
    rebuilt = inputs.resolve_input(b.X, b.var_names, stored)
    for key in ("kind", "steps", "genes", "gene_indices", "target_sum", "standardize", "n_features"):
        assert rebuilt[key] == plan[key], key
    first, _ = inputs.make_source(a, None, CPU, plan)
    again, _ = inputs.make_source(b, None, CPU, stored)
    np.testing.assert_array_equal(first.slice(0, 150).numpy(), again.slice(0, 150).numpy())
    # a later training of the analysis rebuilds it from uns, with no new detection (no warning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", core.RawCountsWarning)
        th = core.calibrate_thresholds(b, noise=0.2)
    assert np.isfinite(th["confidence"])


def test_as_is_reproduces_the_old_training_bit_for_bit():
    a = core.make_synthetic(400, 40, 5, seed=1)
    res = drive(core.iter_training_dynamics(a, "label", epochs=3, seed=2, input="as-is"))
    lr = float(np.clip(LR_GAIN / mean_square_norm(a.X), *LR_RANGE))  # the recipe's rule, on X itself
    assert res.params["lr"] == lr and res.params["input"]["steps"] == []
    cfg = TrainConfig(epochs=3, lr=lr, seed=2, min_hidden=res.params["min_hidden"], balanced=res.params["balanced"])
    y = a.obs["label"].cat.codes.to_numpy().astype(np.int64)
    old = drive(run(RowSource(a.X, CPU), y, 5, cfg, record=[y]))
    np.testing.assert_array_equal(res.trajectory, old.trajectories[0])


def test_gene_association_uses_log_normalised_counts():
    from napari_annotatability.core.genes import gene_scores

    a = _counts()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", core.RawCountsWarning)
        core.score(a, "label", epochs=3, seed=0, calibrate=False, quality=False)
    ref = _scanpy_reference(a.X, scale=False)
    expected, _ = gene_scores(ref.X, a.obs[keys.CONFIDENCE].to_numpy())
    np.testing.assert_allclose(a.var[keys.GENE_HIGH], expected[:, 0], atol=1e-4)
    gm = inputs.gene_matrix(a, None, a.uns[keys.UNS]["params"]["input"])
    np.testing.assert_allclose(gm.block(0, 20), ref.X[:20], rtol=1e-5, atol=1e-5)
    core.gene_association(a)  # the standalone call follows the stored plan too
    np.testing.assert_allclose(a.var[keys.GENE_HIGH], expected[:, 0], atol=1e-4)


def test_cli_input_as_is(tmp_path):
    a = _counts(n=120, g=20)
    a.write_h5ad(tmp_path / "in.h5ad")
    out = tmp_path / "out.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = cli.main(["score", str(tmp_path / "in.h5ad"), "--label", "label", "--out", str(out), "--epochs", "2",
                       "--input", "as-is", "--no-calibrate", "--quiet"])
    assert rc == 0
    assert ad.read_h5ad(out).uns[keys.UNS]["params"]["input"]["mode"] == "as-is"
