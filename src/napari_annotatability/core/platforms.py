"""Open what the instruments write: platform folders, SpatialData stores, Space Ranger output, ``.h5ad``.

:func:`detect` names the kind of input from its signature files alone (nothing is read);
:func:`read_sdata` opens a platform folder or a SpatialData ``.zarr`` with the field's readers
(``spatialdata-io`` for Xenium, MERSCOPE, CosMx and Visium HD; ``spatialdata`` for ``.zarr``);
:func:`table_from_sdata` turns its table into the AnnData the rest of :mod:`core` scores, with
cell centroids in ``obsm["spatial"]``; :func:`read_table` does all of it for any accepted path.
Nothing is ever written next to the input.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from pathlib import Path

from .errors import AnnotatabilityInputError

__all__ = ["ACCEPTED", "KINDS", "EXTRA", "detect", "read_sdata", "read_table", "read_visium", "table_from_sdata",
           "visium_hd_bins"]

#: every kind :func:`detect` can answer
KINDS = ("h5ad", "spatialdata", "xenium", "merscope", "cosmx", "visium_hd", "visium")
#: how to install the platform readers
EXTRA = 'pip install "napari-annotatability[platforms]"'

ACCEPTED = (
    "Accepted inputs: an .h5ad file; "
    "a SpatialData .zarr store (a folder with zarr.json or .zgroup and images/, labels/, shapes/, points/ or "
    "tables/); "
    "a 10x Xenium output folder (experiment.xenium); "
    "a Vizgen MERSCOPE region folder (cell_by_gene.csv and cell_metadata.csv, with images/); "
    "a NanoString CosMx export folder (*_exprMat_file.csv, *_metadata_file.csv and *_fov_positions_file.csv, with "
    "CellLabels/ and CellComposite/); "
    "a 10x Visium HD Space Ranger folder (binned_outputs/square_XXXum/; pick the bin with --bin-size, 8 µm by "
    "default); "
    "a 10x Visium Space Ranger folder (spatial/ and filtered_feature_bc_matrix.h5), or that .h5 file inside it."
)

_COUNTS_H5 = ("filtered_feature_bc_matrix.h5", "raw_feature_bc_matrix.h5")
_BIN_DIR = re.compile(r"square_(\d{3})um$")


# ------------------------------------------------------------------------------------------------ detection
def _is_zarr_group(p: Path) -> bool:
    return (p / "zarr.json").is_file() or (p / ".zgroup").is_file()


def _one(p: Path, suffix: str) -> bool:
    try:
        return any(name.endswith(suffix) for name in os.listdir(p))
    except OSError:
        return False


def detect(path) -> str | None:
    """The kind of input at ``path`` (one of :data:`KINDS`), or None; decided from file names only.

    A file: ``.h5ad``; ``experiment.xenium`` (its Xenium folder); a ``*_feature_bc_matrix.h5``
    inside a Visium folder (``spatial/`` beside it) or inside a Visium HD bin folder.
    A folder: see :data:`ACCEPTED`.
    """
    p = Path(os.fspath(path))
    if p.is_file():
        if p.suffix == ".h5ad":
            return "h5ad"
        if p.name == "experiment.xenium":
            return "xenium"
        if p.name in _COUNTS_H5 and (p.parent / "spatial").is_dir():
            return "visium_hd" if p.parent.parent.name == "binned_outputs" else "visium"
        return None
    if not p.is_dir():
        return None
    if (p / "experiment.xenium").is_file():
        return "xenium"
    if (p / "cell_by_gene.csv").is_file() and (p / "cell_metadata.csv").is_file():
        return "merscope"
    if _one(p, "_exprMat_file.csv") and _one(p, "_metadata_file.csv") and _one(p, "_fov_positions_file.csv"):
        return "cosmx"
    if visium_hd_bins(p):
        return "visium_hd"
    if (p / "spatial").is_dir() and any((p / f).is_file() for f in _COUNTS_H5):
        return "visium"
    if _is_zarr_group(p) and any((p / e).is_dir() for e in ("images", "labels", "shapes", "points", "tables")):
        return "spatialdata"
    return None


def visium_hd_bins(path) -> list[int]:
    """Bin sizes (µm) present in a Visium HD folder's ``binned_outputs/``, ascending; [] if none."""
    folder = Path(os.fspath(path)) / "binned_outputs"
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for d in folder.iterdir() if d.is_dir() and (m := _BIN_DIR.match(d.name)))


# ------------------------------------------------------------------------------------------------ reading
def _not_accepted(p: Path) -> AnnotatabilityInputError:
    if not p.exists():
        return AnnotatabilityInputError(f"input not found: {p}")
    what = "input is a folder that no reader recognises" if p.is_dir() else "input is not a recognised file"
    return AnnotatabilityInputError(f"{what}: {p}. {ACCEPTED}")


def _import_spatialdata_io(kind: str):
    try:
        import spatialdata_io
    except ImportError as err:
        raise AnnotatabilityInputError(
            f"reading a {_TITLE[kind]} folder needs spatialdata-io, which is not installed ({err}): {EXTRA}"
        ) from err
    return spatialdata_io


def _import_spatialdata():
    try:
        import spatialdata
    except ImportError as err:
        raise AnnotatabilityInputError(f"reading SpatialData needs the spatialdata package ({err}): {EXTRA}") from err
    return spatialdata


_TITLE = {"xenium": "Xenium", "merscope": "MERSCOPE", "cosmx": "CosMx", "visium_hd": "Visium HD",
          "spatialdata": "SpatialData"}


def _root(p: Path, kind: str) -> tuple[Path, int | None]:
    """The folder the reader takes, and a bin size implied by the path (a Visium HD bin's .h5)."""
    if kind == "xenium" and p.is_file():
        return p.parent, None
    if kind == "visium_hd" and p.is_file():
        return p.parent.parent.parent, int(_BIN_DIR.match(p.parent.name).group(1))
    return p, None


def _require(root: Path, kind: str, names) -> None:
    missing = [n for n in names if not (root / n).exists()]
    if missing:
        raise AnnotatabilityInputError(
            f"{root} looks like a {_TITLE[kind]} folder but lacks {', '.join(missing)}"
        )


def _cosmx_files(root: Path) -> list[str]:
    counts = [n for n in os.listdir(root) if n.endswith("_exprMat_file.csv")]
    if len(counts) != 1:
        raise AnnotatabilityInputError(f"{root}: expected one *_exprMat_file.csv, found {len(counts)}")
    prefix = counts[0][: -len("exprMat_file.csv")]
    return [counts[0], f"{prefix}metadata_file.csv", f"{prefix}fov_positions_file.csv", "CellLabels", "CellComposite"]


def _visium_hd_kwargs(root: Path, bin_size: int) -> dict:
    bins = visium_hd_bins(root)
    if bin_size not in bins:
        have = ", ".join(f"{b} µm" for b in bins) or "none"
        raise AnnotatabilityInputError(
            f"{root.name} has no {bin_size} µm bins (binned_outputs/square_{bin_size:03d}um); bin sizes present: "
            f"{have}; choose one with --bin-size"
        )
    kwargs = dict(bin_size=bin_size, load_segmentations_only=False, annotate_table_by_labels=True,
                  filtered_counts_file=(root / "binned_outputs" / f"square_{bin_size:03d}um" / _COUNTS_H5[0]).exists())
    if (root / "feature_slice.h5").is_file():  # unprefixed: name the elements after the sample, not ""
        kwargs["dataset_id"] = root.parent.name if root.name == "outs" else root.name
    return kwargs


@contextlib.contextmanager
def _quiet_loggers(names=("spatialdata", "spatialdata_io")):
    """The readers log progress at INFO ("will be relabeled ..."): keep the terminal for real problems."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.level, logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def read_sdata(path, *, bin_size: int = 8, transcripts: bool = False):
    """Open a platform folder or a SpatialData ``.zarr`` as a :class:`spatialdata.SpatialData`.

    Parameters
    ----------
    path
        A Xenium, MERSCOPE, CosMx or Visium HD output folder, or a SpatialData ``.zarr`` store.
    bin_size
        Visium HD: the bin size in µm (``binned_outputs/square_{bin_size:03d}um``); 8 by default.
    transcripts
        Also read the transcript points (Xenium, MERSCOPE, CosMx). Off by default: they are the
        largest files of a run and nothing here needs them.

    Images and segmentation masks stay lazy (dask); Xenium nucleus polygons are not read.
    Visium HD bins are rasterised to a labels grid that the table annotates.
    """
    p = Path(os.fspath(path))
    kind = detect(p)
    if kind is None:
        raise _not_accepted(p)
    if kind in ("h5ad", "visium"):
        raise AnnotatabilityInputError(f"{p} is read as an AnnData, not a SpatialData: use read_table")
    root, implied_bin = _root(p, kind)
    if kind == "spatialdata":
        sd = _import_spatialdata()
        call, args = sd.read_zarr, {}
    else:
        sio = _import_spatialdata_io(kind)
        if kind == "xenium":
            _require(root, kind, ["cells.zarr.zip", "cell_feature_matrix.h5", "cells.parquet"])
            call = sio.xenium
            args = dict(transcripts=transcripts, nucleus_boundaries=False,
                        cells_boundaries=(root / "cell_boundaries.parquet").exists(),
                        morphology_mip=(root / "morphology_mip.ome.tif").exists(),
                        morphology_focus=(root / "morphology_focus").exists()
                        or (root / "morphology_focus.ome.tif").exists())
        elif kind == "merscope":
            _require(root, kind, ["images/micron_to_mosaic_pixel_transform.csv"])
            call, args = sio.merscope, dict(transcripts=transcripts)
        elif kind == "cosmx":
            _require(root, kind, _cosmx_files(root))
            call, args = sio.cosmx, dict(transcripts=transcripts)
        else:
            call, args = sio.visium_hd, _visium_hd_kwargs(root, implied_bin or bin_size)
    try:
        with warnings.catch_warnings(), _quiet_loggers():
            warnings.simplefilter("ignore")
            return call(root, **args)
    except AnnotatabilityInputError:
        raise
    except Exception as err:  # the readers raise anything from AssertionError to KeyError on odd folders
        raise AnnotatabilityInputError(
            f"cannot read {root} as {_TITLE[kind]} ({type(err).__name__}: {err})".replace("\n", " ")
        ) from err


def read_visium(path):
    """A Visium Space Ranger folder (or its ``*_feature_bc_matrix.h5``) as an AnnData, with squidpy.

    ``obsm["spatial"]`` in full-resolution pixels and ``uns["spatial"]`` with the images and
    scale factors, as squidpy and scanpy lay them out; gene names made unique.
    """
    p = Path(os.fspath(path))
    folder, count_file = (p.parent, p.name) if p.is_file() else (p, next(
        (f for f in _COUNTS_H5 if (p / f).is_file()), _COUNTS_H5[0]))
    try:
        import squidpy as sq
    except ImportError as err:
        raise AnnotatabilityInputError(f"reading a Visium folder needs squidpy ({err}): {EXTRA}") from err
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adata = sq.read.visium(folder, counts_file=count_file)
    except Exception as err:
        raise AnnotatabilityInputError(
            f"cannot read {folder} as Visium ({type(err).__name__}: {err})".replace("\n", " ")
        ) from err
    adata.var_names_make_unique()
    return adata


def table_from_sdata(sdata, *, table: str | None = None, coordinate_system: str | None = None):
    """The table of ``sdata`` to score (a copy), with cell centroids in ``obsm["spatial"]``.

    See :func:`napari_annotatability.core._sdata_table.table_from_sdata` for the details.
    """
    from ._sdata_table import table_from_sdata as impl

    return impl(sdata, table=table, coordinate_system=coordinate_system)


def read_table(path, *, bin_size: int = 8, table: str | None = None, backed: bool = False):
    """Any accepted input (see :data:`ACCEPTED`) -> the AnnData to score.

    ``.h5ad`` through :func:`core.io.read_h5ad` (``backed`` keeps X on disk), a Visium folder
    through squidpy (:func:`read_visium`), everything else through :func:`read_sdata` and
    :func:`table_from_sdata` (``table`` names the SpatialData table, ``bin_size`` the Visium HD bins).
    """
    from .io import read_h5ad

    p = Path(os.fspath(path))
    kind = detect(p)
    if backed and kind not in ("h5ad", None):
        raise AnnotatabilityInputError(f"--backed reads an .h5ad a batch at a time; {p.name} is a {kind} input")
    if kind == "h5ad":
        return read_h5ad(p, backed=backed)
    if kind is None:
        if p.is_file():  # an AnnData under another name: try it, and say what else is accepted
            try:
                return read_h5ad(p, backed=backed)
            except AnnotatabilityInputError as err:
                raise AnnotatabilityInputError(f"{err}. {ACCEPTED}") from err
        raise _not_accepted(p)
    if kind == "visium":
        return read_visium(p)
    adata = table_from_sdata(read_sdata(p, bin_size=bin_size), table=table)
    adata.uns["annotatability_source"]["kind"] = kind
    adata.uns["annotatability_source"]["path"] = str(p)
    return adata
