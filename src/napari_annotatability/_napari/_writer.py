"""npe2 writers for a layer of cells (spots as Points, cells as Labels).

They appear in File > Save Selected Layers: the AnnData with all results (.h5ad), a per-cell
table (.csv), GeoJSON (the cells' real polygons when the layer has them, ``metadata['cell_polygons']``,
else circles or points), and the cell groups (``.groups.csv``: ``cell_id,group``) that Xenium
Explorer imports.  The AnnData tied to the layer (``metadata['adata']``) is what is written; a plain
Points layer is exported from its coordinates and features.  Never over the file the layer was read
from, never during training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["write_h5ad", "write_csv", "write_geojson", "write_cell_groups", "adata_for_layer", "group_key"]


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

    if isinstance(data, list) or getattr(data, "ndim", 2) != 2 or "mask" in metadata:
        raise AnnotatabilityInputError("this layer has no table of cells (metadata['adata']): open the data with "
                                       "napari-annotatability to export its cells")
    pts = np.asarray(data, dtype=np.float64)
    if pts.ndim != 2 or not 2 <= pts.shape[1] <= 4:
        raise AnnotatabilityInputError(f"expected (n, 2) point coordinates, got shape {pts.shape}")
    features = meta.get("features")
    obs = pd.DataFrame(features).reset_index(drop=True) if features is not None else pd.DataFrame(index=range(len(pts)))
    obs.index = obs.index.astype(str)
    out = ad.AnnData(obs=obs)
    out.obsm["spatial"] = pts[:, -2:][:, ::-1]  # (row, col) -> (x, y)
    return out


def group_key(adata, metadata: dict) -> str:
    """The obs column the cell groups come from: the layer's categorical colouring, else the category."""
    from ..core import keys
    from ..core.errors import AnnotatabilityInputError
    from ._colors import is_categorical

    key = metadata.get("color_by")
    if key in adata.obs and is_categorical(adata.obs[key]):
        return key
    for key in (keys.CATEGORY, (adata.uns.get(keys.UNS) or {}).get("label_key")):
        if key and key in adata.obs:
            return key
    raise AnnotatabilityInputError("no groups to export: colour the cells by a categorical column, or train first "
                                   f"({keys.CATEGORY!r} is missing)")


def _run(write, path: str, data: Any, meta: dict) -> list[str]:
    from ..core.errors import AnnotatabilityError

    metadata = meta.get("metadata") or {}
    source = metadata.get("source_path")
    try:
        adata = adata_for_layer(data, meta)
        write(adata, path, metadata, protect=(source,) if source else ())
    except AnnotatabilityError as err:
        from napari.utils.notifications import show_error

        show_error(f"napari-annotatability: not saved: {err}")
        return []
    return [path]


def write_h5ad(path: str, data: Any, meta: dict) -> list[str]:
    from ..core.io import write_h5ad as _write

    return _run(lambda adata, p, _m, protect: _write(adata, p, protect=protect), path, data, meta)


def write_csv(path: str, data: Any, meta: dict) -> list[str]:
    from ..core.export import write_spots_csv

    return _run(lambda adata, p, _m, protect: write_spots_csv(adata, p, protect=protect), path, data, meta)


def write_geojson(path: str, data: Any, meta: dict) -> list[str]:
    from ..core.export import write_cells_geojson, write_spots_geojson

    def write(adata, p, metadata, protect):
        polygons = metadata.get("cell_polygons")
        if callable(polygons):  # a mask's boundaries, computed on first export (see _sdata_layers)
            polygons = metadata["cell_polygons"] = polygons()
        if polygons is not None:
            return write_cells_geojson(adata, p, polygons, rows=metadata.get("rows"), protect=protect)
        return write_spots_geojson(adata, p, protect=protect)

    return _run(write, path, data, meta)


def write_cell_groups(path: str, data: Any, meta: dict) -> list[str]:
    from ..core.export import write_cell_groups_csv

    def write(adata, p, metadata, protect):
        return write_cell_groups_csv(adata, p, group_key(adata, metadata), rows=metadata.get("rows"), protect=protect)

    return _run(write, path, data, meta)
