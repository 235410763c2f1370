"""Opt-in preprocessing and the raw-counts warning, on real Visium counts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from napari_annotatability import core

from conftest import PACKAGE_DATA


@pytest.fixture
def visium_counts():
    import scanpy as sc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = sc.read_10x_h5(PACKAGE_DATA / "visium_tiny" / "filtered_feature_bc_matrix.h5")
    adata.var_names_make_unique()
    return adata


def test_raw_counts_are_recognised_and_warned_about(visium_counts):
    assert core.looks_like_counts(visium_counts.X)
    visium_counts.obs["half"] = np.where(np.arange(visium_counts.n_obs) < 50, "a", "b")
    with pytest.warns(core.RawCountsWarning, match="preprocess"):
        core.training_dynamics(visium_counts, "half", epochs=1)


def test_preprocess_log_normalises_and_selects_genes(visium_counts):
    adata = visium_counts[visium_counts.X.sum(1).A1 > 0].copy()
    out = core.preprocess(adata, n_top_genes=30, copy=True)
    assert out.n_vars == 30 and adata.n_vars == 100  # copy leaves the input alone
    assert not core.looks_like_counts(out.X)
    expm1 = np.expm1(out.X.toarray() if sp.issparse(out.X) else out.X)
    assert expm1.min() >= 0
    with pytest.raises(core.AnnotatabilityInputError, match="already normalised"):
        core.preprocess(out)


def test_preprocess_refuses_cells_without_counts(visium_counts):
    adata = visium_counts.copy()
    adata.X = sp.csr_matrix(adata.X)
    adata.X[0] = 0
    adata.X.eliminate_zeros()
    with pytest.raises(core.AnnotatabilityInputError, match="no counts"):
        core.preprocess(adata)
