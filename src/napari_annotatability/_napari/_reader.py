"""npe2 reader: spatial ``.h5ad``, Space Ranger output folders and SpatialData ``.zarr``."""

from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import AnnotatabilityError

__all__ = ["napari_get_reader", "read_spatial"]


def _is_spaceranger(path: Path) -> bool:
    return path.is_dir() and (path / "spatial").is_dir() and any(
        (path / f).exists() for f in ("filtered_feature_bc_matrix.h5", "raw_feature_bc_matrix.h5")
    )


def _is_spatialdata(path: Path) -> bool:
    return path.is_dir() and path.suffix == ".zarr" and (path / "tables").is_dir()


def _h5ad_has_coordinates(path: Path) -> bool:
    """Look inside the file (cheaply, with h5py) for obsm/spatial or x/y obs columns."""
    import h5py

    from ._spatial import COORD_COLUMNS

    try:
        with h5py.File(path, "r") as f:
            if "obsm" in f and "spatial" in f["obsm"]:
                return True
            obs = f.get("obs")
            return obs is not None and any(x in obs and y in obs for x, y in COORD_COLUMNS)
    except OSError:
        return True  # claim it: the reader will say clearly what is wrong with the file


def napari_get_reader(path):
    """Return a reader for spatial omics data we understand, else None (napari's contract)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(os.fspath(path))
    if p.suffix == ".h5ad" and p.is_file():
        return read_spatial if _h5ad_has_coordinates(p) else None
    if _is_spaceranger(p) or _is_spatialdata(p):
        return read_spatial
    return None


def load_adata(path):
    """The AnnData behind a path (Space Ranger folder, .h5ad or SpatialData .zarr)."""
    p = Path(os.fspath(path))
    if _is_spaceranger(p):
        import warnings

        import squidpy as sq

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            count_file = next(f for f in ("filtered_feature_bc_matrix.h5", "raw_feature_bc_matrix.h5")
                              if (p / f).exists())
            adata = sq.read.visium(p, counts_file=count_file)
        adata.var_names_make_unique()
        return adata
    if _is_spatialdata(p):
        from ._spatialdata import read_spatialdata_table

        return read_spatialdata_table(p)
    from ..core.io import read_h5ad

    return read_h5ad(p)


def read_spatial(path):
    """Read ``path`` into napari layers; a broken file gets a clear notification, not a traceback."""
    from ._spatial import layer_data

    if isinstance(path, list):
        path = path[0]
    p = Path(os.fspath(path))
    import warnings

    from napari.utils.notifications import show_error, show_warning

    from ._spatial import SpatialMismatchWarning

    try:
        adata = load_adata(p)
        if adata.obs_names.has_duplicates:
            n_dup = int(adata.obs_names.duplicated().sum())
            adata.obs_names_make_unique()
            show_warning(f"napari-annotatability: {p.name} has {n_dup} repeated cell names; they were made "
                         "unique in the viewer (suffixes -1, -2 ...); the file is unchanged")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SpatialMismatchWarning)
            layers = layer_data(adata, p.stem if p.suffix else p.name)
        for w in caught:
            if issubclass(w.category, SpatialMismatchWarning):
                show_warning(f"napari-annotatability: {p.name}: {w.message}")
        for _, kwargs, _ in layers:
            kwargs["metadata"]["source_path"] = str(p)  # writers never write over it
        return layers
    except (AnnotatabilityError, OSError, ValueError, KeyError) as err:
        show_error(f"napari-annotatability could not open {p.name}: {err}")
        return [(None,)]
