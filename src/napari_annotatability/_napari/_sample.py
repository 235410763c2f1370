"""Sample data (File > Open Sample > Annotatability)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "_data"
#: bump when make_synthetic_cells_sdata changes, so that an old cached store is not reused
CELLS_SAMPLE_VERSION = 1


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


def sample_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/napari-annotatability/samples`` (``~/.cache/...`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "napari-annotatability" / "samples"


def synthetic_cells_store() -> Path:
    """The synthetic-cells SpatialData store, written once to the cache (atomically) and reused."""
    import warnings

    from ..core.synthetic import make_synthetic_cells_sdata

    path = sample_cache_dir() / f"synthetic_cells_v{CELLS_SAMPLE_VERSION}.zarr"
    if path.is_dir():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}-{uuid.uuid4().hex[:8]}.zarr"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make_synthetic_cells_sdata(seed=0).write(tmp)
        try:
            os.rename(tmp, path)  # atomic; fails if another process got there first
        except OSError:
            if not path.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def synthetic_cells():
    """Synthetic cells on a segmentation mask: a SpatialData store opened like a real Xenium section.

    A DAPI + membrane image pyramid, the cell mask and a table with planted mislabels (ground
    truth in ``true_label``, ``mislabelled``, ``transition``, ``mix``; examine ``label``).
    """
    from ._reader import read_spatial

    store = synthetic_cells_store()
    layers = read_spatial(store)
    for _, kwargs, _ in (t for t in layers if len(t) == 3):
        kwargs["name"] = kwargs["name"].replace(store.stem, "synthetic", 1)
    return layers
