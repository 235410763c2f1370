"""Adaptive recipe, cross-fitted out-of-sample confidence and the combined label quality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from napari_annotatability import core
from napari_annotatability.core import keys
from napari_annotatability.core.quality import (
    label_quality,
    out_of_sample_confidence,
    percentile_rank,
    stratified_folds,
)
from napari_annotatability.core.recipes import (
    LR_GAIN,
    LR_RANGE,
    MAX_EPOCHS,
    MIN_EPOCHS,
    STEP_BUDGET,
    mean_square_norm,
    resolve_recipe,
)


def test_published_recipe_is_the_papers():
    X = np.ones((100, 9))
    r = resolve_recipe("published", X, 100, 256)
    assert (r["epochs"], r["lr"], r["min_hidden"]) == (100, 1e-3, 1)
    a = core.make_synthetic(300, 40, 3, seed=0)
    core.training_dynamics(a, "label", recipe="published", epochs=3)
    params = a.uns[keys.UNS]["params"]
    assert params["recipe"] == "published" and params["hidden"] == [20, 10] and params["lr"] == 1e-3


def test_adaptive_recipe_counts_steps_and_scales_the_learning_rate():
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (700, 765))  # mean |x|^2 ~ 765, like pbmc68k_reduced
    r = resolve_recipe("adaptive", X, 700, 256)
    assert r["epochs"] == min(MAX_EPOCHS, int(np.ceil(STEP_BUDGET / 3))) and r["derived"]["steps_per_epoch"] == 3
    assert r["derived"]["step_budget"] == STEP_BUDGET and r["derived"]["epoch_range"] == [MIN_EPOCHS, MAX_EPOCHS]
    assert resolve_recipe("adaptive", X, 700, 256, steps=90)["epochs"] == max(MIN_EPOCHS, 30)
    assert resolve_recipe("adaptive", X, 700, 256, steps=300)["epochs"] == min(MAX_EPOCHS, 100)
    with pytest.raises(core.AnnotatabilityInputError, match="steps"):
        resolve_recipe("adaptive", X, 700, 256, steps=0)
    assert r["lr"] == pytest.approx(min(LR_RANGE[1], LR_GAIN / mean_square_norm(X)))
    mid = X * 2  # mean |x|^2 ~ 3 000: inside the range, lr = LR_GAIN / mean |x|^2
    assert resolve_recipe("adaptive", mid, 700, 256)["lr"] == pytest.approx(LR_GAIN / mean_square_norm(mid))
    big = resolve_recipe("adaptive", X, 1_000_000, 256)
    assert big["epochs"] == MIN_EPOCHS  # never fewer epochs than a trajectory needs
    panel = resolve_recipe("adaptive", X[:, :9] * 0.5, 700, 256)
    assert panel["lr"] == LR_RANGE[1]  # a low-plex panel gets the fastest rate
    huge = resolve_recipe("adaptive", X * 10, 700, 256)
    assert huge["lr"] == LR_RANGE[0]
    # the mean square norm is the same dense or sparse
    assert mean_square_norm(sp.csr_matrix(X)) == pytest.approx(mean_square_norm(X))
    # explicit values win
    fixed = resolve_recipe("adaptive", X, 700, 256, epochs=7, lr=0.05, min_hidden=4)
    assert (fixed["epochs"], fixed["lr"], fixed["min_hidden"]) == (7, 0.05, 4)
    with pytest.raises(core.AnnotatabilityInputError, match="'adaptive', 'published'"):
        resolve_recipe("fast", X, 700, 256)


@pytest.mark.slow
def test_the_recipe_is_recorded_and_reused(synthetic):
    core.training_dynamics(synthetic, "label", seed=0)
    params = synthetic.uns[keys.UNS]["params"]
    assert params["recipe"] == "adaptive" and params["epochs"] == min(MAX_EPOCHS, int(np.ceil(STEP_BUDGET / 8)))
    assert "mean_square_norm" in params["derived"]
    th = core.calibrate_thresholds(synthetic)
    assert th["epochs"] == params["epochs"]


def test_percentile_ranks_share_ties_and_place_values_on_a_reference():
    np.testing.assert_allclose(percentile_rank([3.0, 1.0, 2.0, 2.0]), [0.875, 0.125, 0.5, 0.5])
    ref = np.array([0.1, 0.2, 0.3, 0.4])
    # below, between, equal to and above the reference values
    np.testing.assert_allclose(percentile_rank([0.0, 0.25, 0.3, 0.9], ref), [0.0, 0.5, 0.625, 1.0])
    # a non-finite value ranks lowest, as the least trustworthy
    assert percentile_rank([np.nan, 0.5, 0.6])[0] == percentile_rank([np.nan, 0.5, 0.6]).min()
    with pytest.raises(core.AnnotatabilityInputError, match="reference"):
        percentile_rank([1.0], np.array([]))


def test_label_quality_is_the_mean_rank_of_both_signals():
    conf = np.array([0.9, 0.8, 0.2, 0.95])
    oos = np.array([0.99, 1e-3, 1e-5, 0.5])
    q = label_quality(conf, oos)
    assert q.dtype == np.float32 and ((q >= 0) & (q <= 1)).all()
    np.testing.assert_allclose(q, 0.5 * (percentile_rank(conf) + percentile_rank(oos)), rtol=1e-6)
    assert q[2] == q.min()  # last in both
    # held-out probabilities are sharp: a cell with 1e-3 held out and one with 0.5 differ by
    # one rank, as in the in-sample confidence, not by a factor of 500
    one_rank = 0.25
    assert q[3] - q[1] == pytest.approx(0.5 * (percentile_rank(conf)[3] - percentile_rank(conf)[1] + one_rank))
    # monotone in each signal, the other held fixed
    higher = label_quality(np.array([0.9, 0.85, 0.2, 0.95]), oos)
    assert higher[1] >= q[1]
    # placed on a reference (a calibration run's cells among the scored ones)
    placed = label_quality(np.array([0.0]), np.array([0.0]), reference=(conf, oos))
    assert placed[0] == 0.0
    with pytest.raises(core.AnnotatabilityInputError, match="one value per cell"):
        label_quality(conf, oos[:2])


def test_folds_are_stratified_and_seeded():
    y = np.repeat([0, 1, 2], [10, 5, 1])
    f = stratified_folds(y, 2, seed=0)
    assert np.array_equal(f, stratified_folds(y, 2, seed=0))
    for c in (0, 1):
        assert abs((f[y == c] == 0).sum() - (f[y == c] == 1).sum()) <= 1


def test_out_of_sample_confidence_is_seeded_and_finds_planted_mislabels(synthetic):
    a = synthetic
    core.training_dynamics(a, "label", epochs=30, seed=0)
    oos = out_of_sample_confidence(a, "label")
    assert np.isfinite(oos).all() and ((oos >= 0) & (oos <= 1)).all()
    np.testing.assert_array_equal(oos, out_of_sample_confidence(a, "label"))
    mis = a.obs["mislabelled"].to_numpy()
    assert core.auroc(-oos, mis) > 0.95
    q = label_quality(a.obs[keys.CONFIDENCE].to_numpy(), oos)
    assert core.auroc(-q, mis) > 0.95
    with pytest.raises(core.AnnotatabilityInputError, match="folds"):
        out_of_sample_confidence(a, "label", folds=1)


@pytest.mark.slow
def test_out_of_sample_check_catches_what_memorisation_hides(pbmc):
    """pbmc68k_reduced: 700 cells, 765 genes; 20 % flipped uniformly.

    The in-sample network memorises the flipped labels; the cross-fitted one cannot, and the label
    quality keeps most of what it finds (measured: in-sample 0.73, out-of-sample 0.97, quality 0.90:
    the rank mean weighs a memorising in-sample signal equally; at the default epochs and half class
    balance the in-sample signal memorises far less, see docs/benchmarks.md).
    """
    a = pbmc.copy()
    codes = a.obs["bulk_labels"].cat.codes.to_numpy().astype(np.int64)
    cats = np.asarray(a.obs["bulk_labels"].cat.categories)
    noisy, flipped = core.flip_labels(codes, len(cats), 0.2, seed=0)
    a.obs["noisy"] = pd.Categorical(cats[noisy], categories=cats)
    # the full 1 000-step budget (334 epochs): MAX_EPOCHS caps the default lower, to keep small data cheap;
    # the published sampler (every class equally often) memorises most (half balance: in-sample 0.94)
    core.score(a, "noisy", seed=0, genes=False, correct=False, calibrate=False, epochs=int(np.ceil(STEP_BUDGET / 3)),
               balanced=True)
    ins = core.auroc(-a.obs[keys.CONFIDENCE].to_numpy(), flipped)
    oos = core.auroc(-a.obs[keys.OOS_CONFIDENCE].to_numpy(), flipped)
    both = core.auroc(-a.obs[keys.LABEL_QUALITY].to_numpy(), flipped)
    print(f"pbmc68k_reduced, 20 % uniform flips: AUROC in-sample {ins:.3f}, out-of-sample {oos:.3f}, quality {both:.3f}")
    assert oos > 0.95 and oos > ins + 0.1 and both > 0.85 and both > ins + 0.1
    assert a.uns[keys.UNS]["label_quality"]["averaged_epochs"] == "last half"


@pytest.mark.parametrize("epochs", [5, 6])
def test_record_probs_averages_every_class_over_the_last_half(epochs):
    from napari_annotatability.core._config import TrainConfig
    from napari_annotatability.core._data import RowSource
    from napari_annotatability.core._engine import drive, run

    a = core.make_synthetic(300, 20, 3, separation=3.0, seed=1)
    y = a.obs["label"].cat.codes.to_numpy().astype(np.int64)
    rows = np.arange(0, 300, 3)
    out = drive(run(RowSource(np.asarray(a.X), torch.device("cpu")), y, 3, TrainConfig(epochs=epochs, seed=0, eval_batch_size=64),
                    eval_rows=rows, record=[y], record_probs=True))
    p = out.mean_probs
    assert p.shape == (300, 3) and p.dtype == np.float32
    others = np.setdiff1d(np.arange(300), rows)
    assert np.isnan(p[others]).all() and np.isfinite(p[rows]).all()  # NaN rows: not evaluated
    np.testing.assert_allclose(p[rows].sum(axis=1), 1.0, rtol=1e-5)
    # p(label) over epochs >= epochs // 2 is the trajectory's mean over the same epochs
    late = out.trajectories[0][rows, epochs // 2 :].mean(axis=1, dtype=np.float64)
    np.testing.assert_allclose(p[rows, y[rows]], late, rtol=1e-5)
    # without record_probs nothing is accumulated
    plain = drive(run(RowSource(np.asarray(a.X), torch.device("cpu")), y, 3, TrainConfig(epochs=2, seed=0), record=[y]))
    assert plain.mean_probs is None


def test_out_of_sample_probabilities_match_the_confidence(synthetic):
    from napari_annotatability.core.quality import iter_out_of_sample
    from napari_annotatability.core._engine import drive

    core.training_dynamics(synthetic, "label", epochs=7, seed=0)
    oos = drive(iter_out_of_sample(synthetic, "label"))
    p = oos.probabilities
    assert p.shape == (synthetic.n_obs, 5) and p.dtype == np.float32 and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    y = synthetic.obs["label"].cat.codes.to_numpy()
    np.testing.assert_allclose(oos.confidence, p[np.arange(synthetic.n_obs), y], rtol=1e-5, atol=1e-7)
    assert oos.classes == list(synthetic.obs["label"].cat.categories)


def test_the_label_quality_a_reader_sees_says_its_rank_and_the_erroneous_cut_off():
    """Label quality is relative: the lowest cell of clean data shows ~0.00, so the panels add its rank."""
    import anndata as ad
    import pandas as pd

    from napari_annotatability.core import keys
    from napari_annotatability.core.errors import AnnotatabilityInputError
    from napari_annotatability.core.quality import describe_quality, quality_cutoff_text

    lq = np.array([0.5, 0.0, 0.9, np.nan, 0.5], dtype=np.float32)
    adata = ad.AnnData(obs=pd.DataFrame({keys.LABEL_QUALITY: lq}, index=[f"c{i}" for i in range(5)]))
    assert describe_quality(adata, 1) == "0.000, rank 1 of 4 (lowest first)"
    assert describe_quality(adata, 4) == "0.500, rank 2 of 4 (lowest first)"  # ties share the lower rank
    assert describe_quality(adata, 3) == "—"  # not scored
    adata.uns[keys.UNS] = {"thresholds": {"rule": "calibrated", "label_quality": 0.12}}
    assert describe_quality(adata, 1).endswith("; erroneous at or below 0.120")
    assert describe_quality(adata, 1, cutoff=False) == "0.000, rank 1 of 4 (lowest first)"
    assert quality_cutoff_text(adata) == "0.120"
    adata.uns[keys.UNS]["thresholds"]["label_quality"] = float("-inf")
    assert describe_quality(adata, 1).endswith("; none called erroneous (no cut-off)")
    assert quality_cutoff_text(adata) == "none called (no cut-off)"
    adata.uns[keys.UNS]["thresholds"] = {"rule": "paper", "label_quality": 0.12}  # the paper's rule ignores it
    assert describe_quality(adata, 2) == "0.900, rank 4 of 4 (lowest first)" and quality_cutoff_text(adata) == "—"
    with pytest.raises(AnnotatabilityInputError, match="out of range"):
        describe_quality(adata, 5)
    assert describe_quality(ad.AnnData(obs=pd.DataFrame(index=["a"])), 0) == "—"
