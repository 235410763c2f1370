"""npe2 reader: every input :func:`core.platforms.detect` recognises, as napari layers.

``.h5ad`` and Visium Space Ranger output stay AnnData (spots as Points over the tissue image, as
:func:`._spatial.layer_data` draws them).  Xenium, MERSCOPE, CosMx and Visium HD folders and
SpatialData ``.zarr`` stores are read into a SpatialData object (``core.platforms.read_sdata``),
whose table is scored and whose images and cells become lazy, aligned layers
(:func:`._sdata_layers.sdata_layer_data`).  A folder that is none of these is claimed all the same,
so that the user gets a notification listing what is accepted instead of napari's bare refusal.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import AnnotatabilityError, AnnotatabilityInputError

__all__ = ["napari_get_reader", "read_spatial", "load_adata", "layers_for"]

#: kinds read as an AnnData (the rest go through SpatialData)
ANNDATA_KINDS = ("h5ad", "visium")


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
    """Return a reader for spatial omics data we understand, else None (napari's contract).

    Files: ``.h5ad`` with coordinates, ``experiment.xenium``, a Space Ranger ``*_feature_bc_matrix.h5``.
    Folders: every platform layout, SpatialData ``.zarr`` -- and any other folder, which gets a
    notification saying what is accepted.
    """
    from ..core.platforms import detect

    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(os.fspath(path))
    kind = detect(p)
    if kind == "h5ad":
        return read_spatial if _h5ad_has_coordinates(p) else None
    if kind is not None or p.is_dir():
        return read_spatial
    return None


def _name(p: Path) -> str:
    """A layer-name prefix: the file's stem, or the folder (its parent for a Space Ranger ``outs``)."""
    if p.is_file():
        return p.parent.name if p.name in ("experiment.xenium",) or p.suffix == ".h5" else p.stem
    if p.name == "outs" and p.parent.name:
        return p.parent.name
    return p.stem if p.suffix == ".zarr" else p.name


def load_adata(path):
    """The AnnData behind an ``.h5ad`` or a Visium Space Ranger folder / its ``.h5``; others via read_table."""
    from ..core import platforms

    p = Path(os.fspath(path))
    kind = platforms.detect(p)
    if kind == "visium":
        return platforms.read_visium(p)
    if kind == "h5ad":
        from ..core.io import read_h5ad

        return read_h5ad(p)
    return platforms.read_table(p)


def layers_for(path, *, bin_size: int = 8) -> list[tuple]:
    """LayerDataTuples for any accepted input; raises AnnotatabilityInputError naming what is accepted."""
    import warnings

    from napari.utils.notifications import show_warning

    from ..core import platforms

    p = Path(os.fspath(path))
    kind = platforms.detect(p)
    if kind is None:
        if not p.exists():
            raise AnnotatabilityInputError(f"{p} does not exist")
        raise AnnotatabilityInputError(f"{p.name} is not an input napari-annotatability reads. {platforms.ACCEPTED}")
    if kind in ANNDATA_KINDS:
        from ._spatial import SpatialMismatchWarning, layer_data

        adata = _unique_names(load_adata(p), p)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SpatialMismatchWarning)
            layers = layer_data(adata, _name(p))
        for w in caught:
            if issubclass(w.category, SpatialMismatchWarning):
                show_warning(f"napari-annotatability: {p.name}: {w.message}")
        return layers
    from ._sdata_layers import sdata_layer_data

    sdata = platforms.read_sdata(p, bin_size=bin_size)
    adata = platforms.table_from_sdata(sdata)
    adata.uns["annotatability_source"].update(kind=kind, path=str(p))
    adata = _unique_names(adata, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spatialdata's and xarray's chatter while building the layers
        return sdata_layer_data(sdata, adata, _name(p))


def _unique_names(adata, p: Path):
    if adata.obs_names.has_duplicates:
        from napari.utils.notifications import show_warning

        n_dup = int(adata.obs_names.duplicated().sum())
        adata.obs_names_make_unique()
        show_warning(f"napari-annotatability: {p.name} has {n_dup} repeated cell names; they were made "
                     "unique in the viewer (suffixes -1, -2 ...); the file is unchanged")
    return adata


def read_spatial(path):
    """Read ``path`` into napari layers; a broken or unknown input gets a notification, not a traceback."""
    from napari.utils.notifications import show_error

    if isinstance(path, list):
        path = path[0]
    p = Path(os.fspath(path))
    try:
        layers = layers_for(p)
    except (AnnotatabilityError, OSError, ValueError, KeyError, ImportError) as err:
        show_error(f"napari-annotatability could not open {p.name}: {err}")
        return [(None,)]
    for _, kwargs, _ in layers:
        kwargs["metadata"]["source_path"] = str(p)  # writers never write over it
    return layers
