"""Label correction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_annotatability import core
from napari_annotatability.core import keys


def test_suggested_labels_recover_the_truth_of_planted_mislabels(synthetic):
    core.training_dynamics(synthetic, "label", epochs=15, seed=0)
    core.categorize(synthetic, rule="paper", conf_cutoff=0.3, var_cutoff=0.15)
    core.suggest_labels(synthetic)
    obs = synthetic.obs
    mis = obs["mislabelled"].to_numpy()
    sugg = obs[keys.SUGGESTED_LABEL].astype(str).to_numpy()
    assert (sugg[mis] == obs["true_label"].astype(str).to_numpy()[mis]).mean() > 0.85
    assert list(obs[keys.SUGGESTED_LABEL].cat.categories) == list(obs["label"].cat.categories)
    prob = obs[keys.SUGGESTED_PROB].to_numpy()
    assert prob.dtype == np.float32 and np.all((prob > 0) & (prob <= 1))
    assert synthetic.uns[keys.UNS]["correction"]["n_train"] == int((obs[keys.CATEGORY] != "erroneous").sum())


def test_a_class_without_confident_cells_is_never_suggested(synthetic):
    core.training_dynamics(synthetic, "label", epochs=5, seed=0)
    cat = np.where(synthetic.obs["label"].to_numpy() == "type_2", "erroneous", "correct")
    synthetic.obs[keys.CATEGORY] = pd.Categorical(cat, categories=list(keys.CATEGORIES))
    with pytest.warns(UserWarning, match="type_2"):
        core.suggest_labels(synthetic, epochs=5)
    assert "type_2" not in set(synthetic.obs[keys.SUGGESTED_LABEL].astype(str))
    assert synthetic.uns[keys.UNS]["correction"]["classes_without_training_cells"] == ["type_2"]


def test_label_correction_needs_categories_and_trusted_cells(synthetic):
    core.training_dynamics(synthetic, "label", epochs=2)
    with pytest.raises(core.AnnotatabilityInputError, match="categorize"):
        core.suggest_labels(synthetic)
    core.categorize(synthetic, rule="paper", conf_cutoff=1.0, var_cutoff=1.0)  # everything erroneous
    with pytest.raises(core.AnnotatabilityInputError, match="nothing to retrain"):
        core.suggest_labels(synthetic)
