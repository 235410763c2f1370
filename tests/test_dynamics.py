"""Training dynamics: the contract keys, reproducibility, sparse input, progress and stopping."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from napari_annotatability import core
from napari_annotatability.core import keys
from napari_annotatability.core._mlp import LeanMLP, hidden_widths


def test_writes_the_results_contract(synthetic):
    core.training_dynamics(synthetic, "label", epochs=5, seed=0)
    n = synthetic.n_obs
    for k in keys.SCORE_COLUMNS:
        assert synthetic.obs[k].dtype == np.float32 and synthetic.obs[k].shape == (n,)
    traj = synthetic.obsm[keys.TRAJECTORY]
    assert traj.shape == (n, 5) and traj.dtype == np.float32
    assert np.all((traj >= 0) & (traj <= 1))
    np.testing.assert_allclose(synthetic.obs[keys.CONFIDENCE], traj.mean(1), rtol=1e-5)
    np.testing.assert_allclose(synthetic.obs[keys.VARIABILITY], traj.std(1), rtol=1e-4, atol=1e-6)
    info = synthetic.uns[keys.UNS]
    assert info["label_key"] == "label" and info["params"]["epochs"] == 5 and info["params"]["seed"] == 0
    assert info["params"]["device"] == "cpu" and info["seconds"] > 0 and info["version"]
    assert info["classes"] == [f"type_{i}" for i in range(5)]


def test_first_epoch_is_recorded_before_any_update(synthetic):
    core.training_dynamics(synthetic, "label", epochs=2, seed=7, input="as-is")  # the network sees X itself
    g = torch.Generator().manual_seed(7)
    sizes = [100, *hidden_widths(100, 3), 5]
    fresh = LeanMLP(sizes, lr=1e-3, momentum=0.9, generator=g)
    y = torch.from_numpy(synthetic.obs["label"].cat.codes.to_numpy().astype(np.int64))
    (ev,) = fresh.evaluate(torch.from_numpy(synthetic.X), [y])
    np.testing.assert_allclose(synthetic.obsm[keys.TRAJECTORY][:, 0], ev.prob.numpy(), rtol=1e-5)


def test_same_seed_same_scores_other_seed_other_scores(synthetic):
    a, b, c = synthetic.copy(), synthetic.copy(), synthetic.copy()
    core.training_dynamics(a, "label", epochs=4, seed=1)
    core.training_dynamics(b, "label", epochs=4, seed=1)
    core.training_dynamics(c, "label", epochs=4, seed=2)
    np.testing.assert_array_equal(a.obsm[keys.TRAJECTORY], b.obsm[keys.TRAJECTORY])
    assert not np.array_equal(a.obsm[keys.TRAJECTORY], c.obsm[keys.TRAJECTORY])


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_and_dense_give_identical_scores(synthetic, fmt):
    dense = synthetic.copy()
    sparse = synthetic.copy()
    sparse.X = sp.csr_matrix(sparse.X) if fmt == "csr" else sp.csc_matrix(sparse.X)
    core.training_dynamics(dense, "label", epochs=4, seed=0, batch_size=128)
    core.training_dynamics(sparse, "label", epochs=4, seed=0, batch_size=128)
    np.testing.assert_array_equal(dense.obsm[keys.TRAJECTORY], sparse.obsm[keys.TRAJECTORY])
    assert sparse.uns[keys.UNS]["params"]["sparse_input"] is True
    assert sp.issparse(sparse.X)  # the input is left as it was


def test_planted_mislabels_are_the_least_confident(synthetic):
    core.training_dynamics(synthetic, "label", epochs=20, seed=0)
    auc = core.auroc(-synthetic.obs[keys.CONFIDENCE].to_numpy(), synthetic.obs["mislabelled"].to_numpy())
    assert auc > 0.95


def test_intermediate_cells_are_more_variable_or_less_confident(synthetic):
    core.training_dynamics(synthetic, "label", epochs=20, seed=0)
    obs = synthetic.obs[~synthetic.obs["mislabelled"]]
    inter, clean = obs[obs["intermediate"]], obs[~obs["intermediate"]]
    assert inter[keys.CONFIDENCE].mean() < clean[keys.CONFIDENCE].mean() - 0.1


def test_hidden_width_floor_rescues_low_plex_panels():
    """9 protein-like markers: the published in/4 = 2 units learns far less than the floored net."""
    aucs = {}
    for floor in (1, 32):
        scores = []
        for seed in range(2):
            adata = core.make_synthetic(3000, 9, 6, latent_dim=6, separation=3.0, mislabel_fraction=0.1, seed=seed)
            core.training_dynamics(adata, "label", epochs=20, seed=seed, min_hidden=floor)
            scores.append(core.auroc(-adata.obs[keys.CONFIDENCE].to_numpy(), adata.obs["mislabelled"].to_numpy()))
        aucs[floor] = np.mean(scores)
    assert aucs[32] > aucs[1] + 0.05, aucs


def test_generator_yields_every_epoch_and_does_not_write(synthetic):
    gen = core.iter_training_dynamics(synthetic, "label", epochs=3, seed=0)
    seen = []
    while True:
        try:
            seen.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    assert [p.epoch for p in seen] == [1, 2, 3] and all(p.n_epochs == 3 for p in seen)
    assert all(p.confidence.shape == (synthetic.n_obs,) for p in seen)
    assert seen[0].loss > seen[-1].loss  # it learns
    assert keys.CONFIDENCE not in synthetic.obs  # only the caller writes
    result.write(synthetic)
    np.testing.assert_allclose(seen[-1].confidence, synthetic.obs[keys.CONFIDENCE], rtol=1e-5)


def test_stop_request_cancels_within_the_epoch_and_writes_nothing(synthetic):
    calls = {"n": 0}

    def stop_after_a_few_batches():
        calls["n"] += 1
        return calls["n"] > 3

    before = synthetic.obs.copy()
    with pytest.raises(core.TrainingCancelled):
        core.training_dynamics(synthetic, "label", epochs=50, should_stop=stop_after_a_few_batches)
    assert calls["n"] == 4
    assert synthetic.obs.equals(before) and keys.TRAJECTORY not in synthetic.obsm


def test_retraining_drops_results_derived_from_old_scores(synthetic):
    core.training_dynamics(synthetic, "label", epochs=3)
    core.categorize(synthetic, rule="paper", conf_cutoff=0.2, var_cutoff=0.1)
    assert keys.CATEGORY in synthetic.obs
    core.training_dynamics(synthetic, "label", epochs=3)
    assert keys.CATEGORY not in synthetic.obs


def test_compare_annotations_follows_both_labels(synthetic):
    core.compare_annotations(synthetic, "label", "true_label", epochs=20, seed=0)
    obs = synthetic.obs
    assert obsm_shape(synthetic) == (synthetic.n_obs, 20)
    mis = obs["mislabelled"].to_numpy()
    # for cells whose annotation is wrong, the true label is learnt with more confidence
    assert (obs[keys.OTHER_CONFIDENCE][mis] > obs[keys.CONFIDENCE][mis]).mean() > 0.9
    # where both labels agree the two trajectories are the same
    np.testing.assert_array_equal(obs[keys.OTHER_CONFIDENCE][~mis], obs[keys.CONFIDENCE][~mis])
    assert synthetic.uns[keys.UNS]["other_label_key"] == "true_label"


def obsm_shape(adata):
    return adata.obsm[keys.OTHER_TRAJECTORY].shape


def test_real_pbmc68k_reduced(pbmc):
    adata = pbmc.copy()
    core.training_dynamics(adata, "bulk_labels", epochs=10, seed=0)
    conf = adata.obs[keys.CONFIDENCE]
    assert conf.between(0, 1).all() and conf.std() > 0
    assert adata.uns[keys.UNS]["params"]["hidden"] == [382, 191]


def test_seed_ensemble_averages_its_members(synthetic):
    """n_seeds=3 is the mean of the runs at seed, seed + 100, seed + 200 (variability: their mean)."""
    a = synthetic[:600].copy()
    members = []
    for s in (5, 105, 205):
        m = a.copy()
        core.training_dynamics(m, "label", epochs=6, seed=s)
        members.append(m.obs)
    e = a.copy()
    progress = list(core.iter_training_dynamics(e, "label", epochs=6, seed=5, n_seeds=3))
    assert [p.epoch for p in progress] == list(range(1, 19)) and {p.n_epochs for p in progress} == {18}
    core.training_dynamics(e, "label", epochs=6, seed=5, n_seeds=3)
    for k in (keys.CONFIDENCE, keys.VARIABILITY, keys.CORRECTNESS, keys.AUM):
        mean = np.mean([m[k].to_numpy(dtype=np.float64) for m in members], axis=0)
        np.testing.assert_allclose(e.obs[k].to_numpy(), mean, rtol=1e-5, atol=1e-6, err_msg=k)
    assert e.obsm[keys.TRAJECTORY].shape == (600, 6)
    assert e.uns[keys.UNS]["params"]["seeds"] == [5, 105, 205]
    # the last epoch's live confidence is the ensemble's
    np.testing.assert_allclose(progress[-1].confidence, e.obs[keys.CONFIDENCE].to_numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(core.AnnotatabilityInputError, match="n_seeds"):
        core.training_dynamics(a.copy(), "label", epochs=2, n_seeds=0)


def test_partial_class_balance_draws_in_proportion_to_a_power_of_the_class_size():
    from napari_annotatability.core._config import TrainConfig
    from napari_annotatability.core._engine import _sampling_weights
    from napari_annotatability.core.errors import AnnotatabilityInputError

    y = np.array([0] * 100 + [1] * 25 + [2] * 4)
    w = _sampling_weights(y, 4, 0.5)
    per_class = np.array([w[y == c].sum() for c in range(3)])
    np.testing.assert_allclose(per_class / per_class.sum(), np.sqrt([100, 25, 4]) / np.sqrt([100, 25, 4]).sum())
    np.testing.assert_array_equal(_sampling_weights(y, 4, 1.0), 1.0 / np.bincount(y)[y])
    assert TrainConfig(balanced=True).balanced is True and TrainConfig(balanced=0.5).balanced == 0.5
    for bad in (1.5, -0.1, "yes"):
        with pytest.raises(AnnotatabilityInputError, match="balanced"):
            TrainConfig(balanced=bad)


def test_balance_one_is_class_balance_and_zero_is_a_shuffle():
    a = core.make_synthetic(400, 30, n_classes=3, seed=2)
    runs = {}
    for b in (True, 1.0, False, 0.0):
        x = a.copy()
        core.training_dynamics(x, "label", epochs=3, seed=1, balanced=b)
        runs[b] = x.obs["annot_confidence"].to_numpy()
    np.testing.assert_array_equal(runs[True], runs[1.0])
    np.testing.assert_array_equal(runs[False], runs[0.0])
    assert not np.array_equal(runs[True], runs[False])
