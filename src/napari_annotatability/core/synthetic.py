"""Synthetic data with known ground truth: planted mislabels and intermediate cells.

Used by the demo, the tests and the benchmarks wherever the truth must be known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["make_synthetic"]


def make_synthetic(
    n_cells: int = 2000,
    n_features: int = 200,
    n_classes: int = 5,
    *,
    mislabel_fraction: float = 0.05,
    intermediate_fraction: float = 0.05,
    separation: float = 2.0,
    latent_dim: int = 10,
    sparse: bool = False,
    seed: int = 0,
):
    """Log-normalised-like expression of ``n_classes`` cell types with planted label errors.

    Each class is a Gaussian cluster in a ``latent_dim`` space (centres ``separation`` apart
    on average), mapped to ``n_features`` non-negative features through a random loading
    matrix, plus noise; about half the entries are zero, like a log-normalised matrix.

    Ground truth in ``obs``: ``true_label``; ``label`` (the annotation to examine) equals
    ``true_label`` except for a ``mislabel_fraction`` of cells flipped to another class
    (``mislabelled == True``); an ``intermediate_fraction`` of cells sit halfway between two
    classes (``intermediate == True``, labelled as one of them).

    Returns an AnnData with float32 ``X`` (CSR when ``sparse``).
    """
    import anndata as ad

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, separation / np.sqrt(2), size=(n_classes, latent_dim))
    true = rng.integers(0, n_classes, size=n_cells)
    z = centres[true] + rng.normal(0, 1.0, size=(n_cells, latent_dim))
    intermediate = rng.random(n_cells) < intermediate_fraction
    partner = (true + rng.integers(1, n_classes, size=n_cells)) % n_classes
    z[intermediate] = 0.5 * (centres[true[intermediate]] + centres[partner[intermediate]]) + rng.normal(
        0, 0.5, size=(int(intermediate.sum()), latent_dim)
    )
    loadings = rng.normal(0, 1.0 / np.sqrt(latent_dim), size=(latent_dim, n_features))
    expr = z @ loadings + rng.normal(0, 0.5, size=(n_cells, n_features))
    X = np.maximum(expr, 0.0).astype(np.float32)

    label = true.copy()
    mislabelled = (rng.random(n_cells) < mislabel_fraction) & ~intermediate
    label[mislabelled] = (true[mislabelled] + rng.integers(1, n_classes, size=int(mislabelled.sum()))) % n_classes
    names = np.array([f"type_{i}" for i in range(n_classes)])
    cats = list(names)
    obs = pd.DataFrame(
        {
            "label": pd.Categorical(names[label], categories=cats),
            "true_label": pd.Categorical(names[true], categories=cats),
            "mislabelled": mislabelled,
            "intermediate": intermediate,
        },
        index=[f"cell_{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"gene_{j}" for j in range(n_features)])
    return ad.AnnData(sp.csr_matrix(X) if sparse else X, obs=obs, var=var)
