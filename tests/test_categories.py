"""Categories and noise-injection calibration."""

from __future__ import annotations

import numpy as np
import pytest

from napari_annotatability import core
from napari_annotatability.core import keys


def _scored(conf, var):
    import anndata as ad

    a = ad.AnnData(np.zeros((len(conf), 2), dtype=np.float32))
    a.obs[keys.CONFIDENCE] = np.asarray(conf, dtype=np.float32)
    a.obs[keys.VARIABILITY] = np.asarray(var, dtype=np.float32)
    return a


def test_category_rules_follow_the_paper():
    a = _scored([0.1, 0.1, 0.97, 0.97, 0.6, 0.3], [0.05, 0.3, 0.05, 0.2, 0.1, 0.05])
    core.categorize(a, conf_cutoff=0.3, var_cutoff=0.1)
    assert list(a.obs[keys.CATEGORY]) == ["erroneous", "ambiguous", "correct", "ambiguous", "ambiguous", "erroneous"]
    assert list(a.obs[keys.CATEGORY].cat.categories) == list(keys.CATEGORIES)
    assert a.uns[keys.UNS]["thresholds"]["confidence"] == pytest.approx(0.3)
    assert a.uns[keys.UNS]["thresholds"]["method"] == "given"
    assert len(a.uns[f"{keys.CATEGORY}_colors"]) == 3


def test_categorize_without_cutoffs_says_what_to_do():
    a = _scored([0.5], [0.1])
    with pytest.raises(core.AnnotatabilityInputError, match="calibrate_thresholds"):
        core.categorize(a)
    b = _scored([0.5], [0.1])
    del b.obs[keys.CONFIDENCE]
    with pytest.raises(core.AnnotatabilityInputError, match="training_dynamics"):
        core.categorize(b, conf_cutoff=0.1, var_cutoff=0.1)


def test_flip_labels_flips_the_fraction_to_another_class():
    y = np.repeat(np.arange(4), 2500)
    noisy, flipped = core.flip_labels(y, 4, 0.2, seed=0)
    assert abs(flipped.mean() - 0.2) < 0.02
    assert np.all(noisy[flipped] != y[flipped]) and np.all(noisy[~flipped] == y[~flipped])
    counts = np.bincount((noisy[flipped] - y[flipped]) % 4, minlength=4)
    assert counts[0] == 0 and counts[1:].min() > 0.25 * flipped.sum()  # uniform over the others
    again, _ = core.flip_labels(y, 4, 0.2, seed=0)
    np.testing.assert_array_equal(noisy, again)
    with pytest.raises(core.AnnotatabilityInputError):
        core.flip_labels(y, 4, 1.5, seed=0)


def test_auroc():
    assert core.auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert core.auroc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert core.auroc(np.array([1, 1, 1, 1.0]), np.array([0, 1, 0, 1])) == 0.5


def test_calibration_reuses_the_recipe_and_finds_mislabels(synthetic):
    core.training_dynamics(synthetic, "label", epochs=15, lr=1e-3, seed=0)
    th = core.calibrate_thresholds(synthetic, noise=0.1, percentile=90)
    assert th["epochs"] == 15 and th["method"] == "noise injection"
    assert 0 < th["confidence"] < 1 and 0 <= th["variability"] < 0.5
    assert th["flipped_auroc"] > 0.9
    core.categorize(synthetic)
    cat = synthetic.obs[keys.CATEGORY]
    mis = synthetic.obs["mislabelled"].to_numpy()
    assert (cat[mis] == "erroneous").mean() > 0.6
    assert (cat[~mis] == "erroneous").mean() < 0.1
