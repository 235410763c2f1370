"""The spot inspector follows the cell on show: a selection shows it, new results refresh it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")

from conftest import needs_display  # noqa: E402

from napari_annotatability.core import keys  # noqa: E402

pytestmark = needs_display


def _scored_spots(viewer, n=50, seed=0):
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    obs = pd.DataFrame({
        "label": pd.Categorical(rng.choice(["a", "b"], n)),
        keys.CONFIDENCE: rng.random(n), keys.VARIABILITY: 0.1 * rng.random(n),
        keys.CATEGORY: pd.Categorical(["erroneous"] * n, categories=list(keys.CATEGORIES)),
    }, index=[f"cell{i}" for i in range(n)])
    adata = ad.AnnData(obs=obs)
    adata.obsm[keys.TRAJECTORY] = rng.random((n, 12)).astype(np.float32)
    adata.uns[keys.UNS] = {"label_key": "label"}
    return viewer.add_points(rng.random((n, 2)) * 100, size=3, metadata={"adata": adata}), adata


def test_new_results_refresh_the_cell_on_show(make_napari_viewer):
    """After a retraining the inspector shows the cell's new category, not the one it had."""
    from napari_annotatability._napari._inspector import InspectorWidget
    from napari_annotatability._napari._model import cell_model

    viewer = make_napari_viewer()
    layer, adata = _scored_spots(viewer)
    inspector = InspectorWidget(viewer)
    layer.selected_data = {7}
    assert "cell7" in inspector.title.text() and inspector.values["category"].text() == "erroneous"
    adata.obs[keys.CATEGORY] = adata.obs[keys.CATEGORY].cat.set_categories(list(keys.CATEGORIES))
    adata.obs.loc["cell7", keys.CATEGORY] = "correct"
    adata.obs.loc["cell7", keys.CONFIDENCE] = 0.987
    cell_model(viewer).notify_results(adata)
    assert "cell7" in inspector.title.text()
    assert inspector.values["category"].text() == "correct" and inspector.values["confidence"].text() == "0.987"
    assert inspector.values["label quality"].text() == "—"  # trained without the label quality
    assert inspector.values["erroneous at or below"].text() == "—"


def test_the_label_quality_shows_its_rank_and_the_cut_off(make_napari_viewer):
    """Label quality is relative: the inspector says where the cell ranks and where erroneous starts."""
    from napari_annotatability._napari._inspector import InspectorWidget

    viewer = make_napari_viewer()
    layer, adata = _scored_spots(viewer)
    adata.obs[keys.LABEL_QUALITY] = np.linspace(0, 1, adata.n_obs, dtype=np.float32)
    adata.uns[keys.UNS]["thresholds"] = {"rule": "calibrated", "label_quality": 0.1}
    inspector = InspectorWidget(viewer)
    layer.selected_data = {0}
    assert inspector.values["label quality"].text() == "0.000, rank 1 of 50 (lowest first)"
    assert inspector.values["erroneous at or below"].text() == "0.100"
