"""Sample data (File > Open Sample > Annotatability)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "_data"


def synthetic_tissue():
    """A seeded synthetic section: H&E-like image, ~3000 spots, planted mislabels, a transition zone.

    Ground truth is in the spots' features: ``region``, ``mislabelled``, ``transition``, ``mix``.
    Examine the ``label`` column.
    """
    from ..core.synthetic import make_synthetic_tissue
    from ._spatial import layer_data

    return layer_data(make_synthetic_tissue(seed=0), "synthetic")


def visium_tiny():
    """A tiny real Visium section (100 spots, scanpy's test data, BSD-3; see _data/visium_tiny/NOTICE).

    Counts are log-normalised and the spots get a ``cluster`` label (k-means on PCA, seeded)
    so there is an annotation to examine.
    """
    import warnings

    import numpy as np
    import pandas as pd
    import scanpy as sc
    from sklearn.cluster import KMeans

    from ._reader import load_adata
    from ._spatial import layer_data

    adata = load_adata(DATA / "visium_tiny")
    adata = adata[np.asarray(adata.X.sum(axis=1)).ravel() > 0].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.normalize_total(adata, target_sum=1e4)
        sc.pp.log1p(adata)
        sc.pp.pca(adata, n_comps=10, random_state=0)
    km = KMeans(n_clusters=4, n_init=10, random_state=0).fit(adata.obsm["X_pca"])
    adata.obs["cluster"] = pd.Categorical([f"c{k}" for k in km.labels_])
    return layer_data(adata, "visium_tiny")
