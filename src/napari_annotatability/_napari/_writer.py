"""npe2 writers for a spots layer: the AnnData with all results (.h5ad), CSV and GeoJSON.

They appear in File > Save Selected Layers.  The AnnData tied to the layer
(``metadata['adata']``) is what is written; a plain Points layer is exported from its
coordinates and features.  Never over the file the layer was read from, never during training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["write_h5ad", "write_csv", "write_geojson", "adata_for_layer"]


def adata_for_layer(data: Any, meta: dict):
    """The layer's AnnData, or one built from a plain Points layer's coordinates and features."""
    from ..core.errors import AnnotatabilityInputError

    metadata = meta.get("metadata") or {}
    if metadata.get("training"):
        raise AnnotatabilityInputError("a training is running on this layer: export when it has finished")
    adata = metadata.get("adata")
    if adata is not None:
        return adata
    import anndata as ad
    import pandas as pd

    pts = np.asarray(data, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2:
        raise AnnotatabilityInputError(f"expected (n, 2) point coordinates, got shape {pts.shape}")
    features = meta.get("features")
    obs = pd.DataFrame(features).reset_index(drop=True) if features is not None else pd.DataFrame(index=range(len(pts)))
    obs.index = obs.index.astype(str)
    out = ad.AnnData(obs=obs)
    out.obsm["spatial"] = pts[:, -2:][:, ::-1]  # (row, col) -> (x, y)
    return out


def _run(write, path: str, data: Any, meta: dict) -> list[str]:
    from ..core.errors import AnnotatabilityError

    source = (meta.get("metadata") or {}).get("source_path")
    try:
        adata = adata_for_layer(data, meta)
        write(adata, path, protect=(source,) if source else ())
    except AnnotatabilityError as err:
        from napari.utils.notifications import show_error

        show_error(f"napari-annotatability: not saved: {err}")
        return []
    return [path]


def write_h5ad(path: str, data: Any, meta: dict) -> list[str]:
    from ..core.io import write_h5ad as _write

    return _run(_write, path, data, meta)


def write_csv(path: str, data: Any, meta: dict) -> list[str]:
    from ..core.export import write_spots_csv

    return _run(write_spots_csv, path, data, meta)


def write_geojson(path: str, data: Any, meta: dict) -> list[str]:
    from ..core.export import write_spots_geojson

    return _run(write_spots_geojson, path, data, meta)
