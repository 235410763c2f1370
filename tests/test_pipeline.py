"""The whole analysis as one generator (what the napari widget drives)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_annotatability import core
from napari_annotatability.core import keys
from napari_annotatability.core.quality import percentile_rank


def test_iter_score_reports_every_stage_and_writes_only_at_the_end(synthetic):
    gen = core.iter_score(synthetic, "label", epochs=4, seed=0)
    stages = []
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        stages.append((p.stage, p.epoch))
        assert keys.CONFIDENCE not in synthetic.obs
    # cross-fitting: two networks (one per fold) of 4 epochs each, reported as 8
    # (suggested labels come from the cross-fitted networks: no separate correction training)
    assert stages == ([("training", e) for e in range(1, 5)] + [("cross-fitting", e) for e in range(1, 9)]
                      + [("calibrating", e) for e in range(1, 5)])
    result.write(synthetic)
    for k in (keys.CATEGORY, keys.SUGGESTED_LABEL, keys.SUGGESTED_PROB, keys.LABEL_QUALITY, keys.OOS_CONFIDENCE,
              *keys.SCORE_COLUMNS):
        assert k in synthetic.obs
    obs = synthetic.obs
    # the mean of the in-sample and out-of-sample confidences' percentile ranks
    rank = [percentile_rank(obs[k].to_numpy()) for k in (keys.CONFIDENCE, keys.OOS_CONFIDENCE)]
    np.testing.assert_allclose(obs[keys.LABEL_QUALITY], 0.5 * (rank[0] + rank[1]), rtol=1e-5)
    assert synthetic.uns[keys.UNS]["label_quality"]["folds"] == 2
    assert keys.GENE_MID in synthetic.var
    assert synthetic.uns[keys.UNS]["thresholds"]["method"] == "noise injection"


def test_score_equals_the_step_by_step_functions(synthetic):
    a, b = synthetic.copy(), synthetic.copy()
    core.score(a, "label", epochs=5, seed=2, correction="retrain", rule="paper")
    core.training_dynamics(b, "label", epochs=5, seed=2)
    core.calibrate_thresholds(b)
    core.categorize(b, rule="paper")
    core.suggest_labels(b)
    core.gene_association(b)
    assert a.obs[keys.CATEGORY].equals(b.obs[keys.CATEGORY])
    assert a.obs[keys.SUGGESTED_LABEL].equals(b.obs[keys.SUGGESTED_LABEL])
    np.testing.assert_array_equal(a.var[keys.GENE_HIGH], b.var[keys.GENE_HIGH])


def test_stopping_during_calibration_leaves_the_data_untouched(synthetic):
    before = synthetic.copy()
    state = {"stage": None}

    def stop():
        return state["stage"] == "calibrating"

    gen = core.iter_score(synthetic, "label", epochs=3, should_stop=stop)
    with pytest.raises(core.TrainingCancelled):
        for p in gen:
            state["stage"] = p.stage
    assert synthetic.obs.equals(before.obs) and set(synthetic.uns) == set(before.uns)


def test_given_cutoffs_skip_calibration(synthetic):
    gen = core.iter_score(synthetic, "label", epochs=2, conf_cutoff=0.3, var_cutoff=0.1, correct=False, genes=False,
                          quality=False, rule="paper")
    assert {p.stage for p in gen} == {"training"}
    gen = core.iter_score(synthetic, "label", epochs=2, quality_cutoff=0.2, correct=False, genes=False)
    assert {p.stage for p in gen} == {"training", "cross-fitting"}  # the label quality needs no calibration
    with pytest.raises(core.AnnotatabilityInputError, match="both"):
        core.score(synthetic, "label", epochs=2, conf_cutoff=0.3)


@pytest.mark.slow
def test_default_suggestions_come_from_the_cross_fitted_networks(synthetic):
    core.score(synthetic, "label", seed=0, genes=False)
    obs = synthetic.obs
    assert synthetic.uns[keys.UNS]["correction"]["method"] == "cross-fitted"
    mis = obs["mislabelled"].to_numpy()
    fixed = (obs[keys.SUGGESTED_LABEL].astype(str) == obs["true_label"].astype(str)).to_numpy()
    assert fixed[mis].mean() > 0.9  # the planted mislabels get their true type back
    clean = ~mis & ~obs["intermediate"].to_numpy()
    assert fixed[clean].mean() > 0.97
    assert ((obs[keys.SUGGESTED_PROB] > 0) & (obs[keys.SUGGESTED_PROB] <= 1)).all()
    with pytest.raises(core.AnnotatabilityInputError, match="quality"):
        core.score(synthetic, "label", epochs=2, correction="cross-fit", quality=False)
    with pytest.raises(core.AnnotatabilityInputError, match="correction"):
        core.score(synthetic, "label", epochs=2, correction="both")


def test_cross_fitted_suggestions_need_no_calibration(synthetic):
    core.score(synthetic, "label", epochs=10, seed=0, calibrate=False, genes=False)
    assert keys.CATEGORY not in synthetic.obs  # no cut-offs, no categories ...
    assert keys.SUGGESTED_LABEL in synthetic.obs  # ... but every cell still gets a suggestion
    core.score(synthetic, "label", epochs=10, seed=0, calibrate=False, genes=False, correction="retrain")
    assert keys.SUGGESTED_LABEL not in synthetic.obs  # the paper's retraining needs the categories
