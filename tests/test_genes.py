"""Gene association."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from napari_annotatability import core
from napari_annotatability.core import keys


def _with_conf(X, conf):
    import anndata as ad

    a = ad.AnnData(X)
    a.obs[keys.CONFIDENCE] = conf.astype(np.float32)
    return a


def test_scores_are_pearson_correlations_dense_and_sparse(rng):
    X = np.maximum(rng.normal(size=(300, 20)), 0).astype(np.float32)
    conf = rng.random(300)
    X[:, 0] = conf * 3 + rng.normal(0, 0.1, 300)
    X[:, 1] = 0.0  # constant gene
    dense = _with_conf(X, conf)
    sparse = _with_conf(sp.csr_matrix(X), conf)
    core.gene_association(dense)
    core.gene_association(sparse)
    expected = [np.corrcoef(X[:, j], conf.astype(np.float32))[0, 1] if X[:, j].std() > 0 else 0.0 for j in range(20)]
    np.testing.assert_allclose(dense.var[keys.GENE_HIGH], expected, atol=1e-5)
    np.testing.assert_allclose(sparse.var[keys.GENE_HIGH], dense.var[keys.GENE_HIGH], atol=1e-6)
    np.testing.assert_allclose(dense.var[keys.GENE_LOW], -dense.var[keys.GENE_HIGH], atol=1e-6)
    assert dense.var[keys.GENE_HIGH].iloc[1] == 0.0
    assert core.top_genes(dense, "high", 1)["gene"].iloc[0] == dense.var_names[0]


def test_mid_score_marks_genes_of_mid_range_confidence(rng):
    n = 600
    conf = np.concatenate([rng.uniform(0.0, 0.15, 200), rng.uniform(0.4, 0.6, 200), rng.uniform(0.9, 1.0, 200)])
    X = rng.random((n, 10)).astype(np.float32)
    X[200:400, 3] += 2.0  # expressed in the ambiguous cells only
    a = _with_conf(X, conf)
    core.gene_association(a)
    assert a.var[keys.GENE_MID].idxmax() == a.var_names[3]
    assert a.var[keys.GENE_MID].iloc[3] > 0.5
    assert a.uns[keys.UNS]["genes"]["n_mid_cells"] == 200
    # the published indicator would be ~all zeros here: ours marks exactly the mid cells
    assert core.mid_indicator(conf).sum() == 200


def test_gene_association_needs_scores_and_says_so(rng):
    import anndata as ad

    with pytest.raises(core.AnnotatabilityInputError, match="training_dynamics"):
        core.gene_association(ad.AnnData(rng.random((5, 3)).astype(np.float32)))
    with pytest.raises(core.AnnotatabilityInputError, match="mid_range"):
        core.mid_indicator(np.array([0.5]), (0.8, 0.2))
