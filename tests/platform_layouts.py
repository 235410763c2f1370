"""Tiny folders in the layouts the instruments write, for tests (no network, < 1 s, < 300 kB each).

Each ``write_*`` function creates ``path`` (a folder that must not exist yet, or be empty) with the
files the platform's software writes and that spatialdata-io 0.7's reader for it needs, filled with
``n_cells`` synthetic cells on a grid: square cells, counts drawn from two cell types, an image
whose bright squares are the cells.  The layouts follow the readers in ``spatialdata_io.readers``
(file names, columns, units, transformations) and the vendors' documentation:

- ``write_xenium``: Xenium Onboard Analysis 2.0 output (``experiment.xenium``, ``cells.zarr.zip``
  with the segmentation masks and ``polygon_sets``, ``cells.parquet``, ``cell_feature_matrix.h5``,
  ``cell_boundaries.parquet``, ``nucleus_boundaries.parquet``, ``transcripts.parquet``,
  ``morphology_focus/morphology_focus_0000.ome.tif``).  Coordinates in µm, pixel size 0.2125 µm.
- ``write_merscope``: a MERSCOPE region folder (``cell_by_gene.csv``, ``cell_metadata.csv``,
  ``cell_boundaries.parquet``, ``detected_transcripts.csv``, ``images/mosaic_*_z3.tif`` and
  ``images/micron_to_mosaic_pixel_transform.csv``).
- ``write_cosmx``: a CosMx flat-file export with two FOVs (``*_exprMat_file.csv``,
  ``*_metadata_file.csv``, ``*_fov_positions_file.csv``, ``*_tx_file.csv``, ``CellComposite/``,
  ``CellLabels/``).
- ``write_visium_hd``: a Visium HD Space Ranger ``outs`` folder (``feature_slice.h5``,
  ``spatial/``, ``microscope_image/``, ``binned_outputs/square_XXXum/`` per bin size).

Every function returns the folder and a dict of what it planted (cell ids, centres, labels) so
tests can check positions.  Import as ``from platform_layouts import write_xenium`` (``tests/`` is
on ``sys.path`` under pytest's default rootdir-relative import) or ``from tests.platform_layouts``.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

__all__ = ["write_xenium", "write_merscope", "write_cosmx", "write_visium_hd", "write_10x_h5", "GENES"]

#: the gene panel of every layout: two marker pairs and two housekeeping genes
GENES = ["CD3E", "CD8A", "EPCAM", "KRT8", "ACTB", "GAPDH"]


def _folder(path) -> Path:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    if any(p.iterdir()):
        raise FileExistsError(f"{p} is not empty")
    return p


def _counts(n_cells: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_cells x len(GENES)) integer counts and the cell type (0 or 1) of each cell."""
    rng = np.random.default_rng(seed)
    kind = np.arange(n_cells) % 2
    rate = np.where(kind[:, None] == 0, [8, 6, 0.2, 0.2, 5, 5], [0.2, 0.2, 8, 6, 5, 5])
    return rng.poisson(rate).astype(np.int32), kind


def _grid(n_cells: int, spacing: float, origin: float) -> np.ndarray:
    """(n_cells, 2) (x, y) centres on a square-ish grid."""
    side = int(np.ceil(np.sqrt(n_cells)))
    i = np.arange(n_cells)
    return np.stack([origin + (i % side) * spacing, origin + (i // side) * spacing], axis=1).astype(float)


def write_10x_h5(path, counts: np.ndarray, barcodes, genes=GENES, *, feature_type: str = "Gene Expression") -> Path:
    """A Cell Ranger / Space Ranger / Xenium ``*_feature_bc_matrix.h5`` (format v3, CSC by barcode)."""
    import scipy.sparse as sp

    m = sp.csc_matrix(np.asarray(counts).T)  # features x barcodes
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=np.array([str(b).encode() for b in barcodes]))
        g.create_dataset("data", data=m.data.astype(np.int32))
        g.create_dataset("indices", data=m.indices.astype(np.int64))
        g.create_dataset("indptr", data=m.indptr.astype(np.int64))
        g.create_dataset("shape", data=np.array(m.shape, dtype=np.int32))
        ft = g.create_group("features")
        ft.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
        ft.create_dataset("id", data=np.array([f"ENSG{i:011d}".encode() for i in range(len(genes))]))
        ft.create_dataset("name", data=np.array([g_.encode() for g_ in genes]))
        ft.create_dataset("feature_type", data=np.array([feature_type.encode()] * len(genes)))
        ft.create_dataset("genome", data=np.array([b"GRCh38"] * len(genes)))
    return Path(path)


def _square(cx: float, cy: float, half: float) -> np.ndarray:
    """Closed ring (5 vertices) of an axis-aligned square."""
    return np.array([[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half],
                     [cx - half, cy + half], [cx - half, cy - half]])


def _paint(shape: tuple[int, int], centres_px: np.ndarray, half: int, values) -> np.ndarray:
    """A label/intensity image with a (2*half) x (2*half) square of ``values[i]`` around each centre."""
    img = np.zeros(shape, dtype=np.asarray(values).dtype)
    for (cx, cy), v in zip(np.round(centres_px).astype(int), values):
        img[cy - half:cy + half, cx - half:cx + half] = v
    return img


# ------------------------------------------------------------------------------------------------ Xenium
def write_xenium(path, n_cells: int = 20, *, seed: int = 0, pixel_size: float = 0.2125,
                 cell_type: bool = False) -> tuple[Path, dict]:
    """A Xenium Onboard Analysis 2.0 output folder with ``n_cells`` square cells.

    ``cell_type=True`` adds a ``cell_type`` column (``"T"`` / ``"epithelial"``) to ``cells.parquet``,
    as a user who merged an annotation back into the run would (the reader copies every column
    of that file into the table's obs): something to score.

    Cells are 8 px squares every 12 px; label ``i + 1`` of ``cells.zarr.zip``'s cell mask is the
    ``i``-th cell (``polygon_sets/1/cell_index``), whose id is the Xenium string of
    ``(prefix i + 1, suffix 1)``.  Returns ``(path, info)`` with ``info["cell_id"]``,
    ``info["centre_px"]`` (x, y) in morphology-image pixels (the reader's ``global`` system)
    and ``info["label"]``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    import tifffile
    import zarr
    from spatialdata_io.readers.xenium import cell_id_str_from_prefix_suffix_uint32

    p = _folder(path)
    centre_px = _grid(n_cells, 12.0, 10.0) + 0.0
    side = int(centre_px.max() + 10)
    shape = (side + 4, side)  # not square: catches x/y swaps
    labels = np.arange(1, n_cells + 1, dtype=np.uint32)
    raw = np.stack([labels, np.ones(n_cells, np.uint32)], axis=1)
    cell_id = np.asarray(cell_id_str_from_prefix_suffix_uint32(raw[:, 0], raw[:, 1])).astype(str)
    counts, kind = _counts(n_cells, seed)
    um = centre_px * pixel_size

    (p / "experiment.xenium").write_text(json.dumps({
        "major_version": 5, "minor_version": 0, "run_name": "tiny", "region_name": "tiny-region",
        "analysis_sw_version": "xenium-2.0.0.10", "pixel_size": pixel_size, "panel_name": "tiny panel",
        "num_cells": n_cells,
    }))

    cell_mask = _paint(shape, centre_px, 4, labels)
    nucleus_mask = _paint(shape, centre_px, 2, labels)
    with zarr.storage.ZipStore(p / "cells.zarr.zip", mode="w") as store:
        root = zarr.open_group(store, mode="w", zarr_format=2)
        root.create_array("cell_id", data=raw)
        summary = np.column_stack([um, np.full(n_cells, 64 * pixel_size ** 2), um,
                                   np.full(n_cells, 16 * pixel_size ** 2), np.zeros(n_cells), np.ones(n_cells)])
        # attributes at creation: a zip store cannot rewrite a member (setting attrs later duplicates it)
        root.create_array("cell_summary", data=summary.astype(np.float64), attributes={"column_names": [
            "cell_centroid_x", "cell_centroid_y", "cell_area", "nucleus_centroid_x", "nucleus_centroid_y",
            "nucleus_area", "z_level", "nucleus_count"]})
        masks = root.create_group("masks")
        masks.create_array("0", data=nucleus_mask, chunks=(32, 32))
        masks.create_array("1", data=cell_mask, chunks=(32, 32))
        ps = root.create_group("polygon_sets")
        for k in ("0", "1"):
            ps.create_group(k).create_array("cell_index", data=np.arange(n_cells, dtype=np.uint32))

    cells = pd.DataFrame({
        "cell_id": cell_id, "x_centroid": um[:, 0], "y_centroid": um[:, 1],
        "transcript_counts": counts.sum(1), "control_probe_counts": 0, "control_codeword_counts": 0,
        "total_counts": counts.sum(1), "cell_area": 64 * pixel_size ** 2, "nucleus_area": 16 * pixel_size ** 2,
        "nucleus_count": 1, "segmentation_method": "Segmented by boundary stain (ATP1A1+CD45+E-Cadherin)",
    })
    if cell_type:
        cells["cell_type"] = np.where(kind == 0, "T", "epithelial")
    cells.to_parquet(p / "cells.parquet", index=False)
    write_10x_h5(p / "cell_feature_matrix.h5", counts, cell_id)

    for name, half in (("cell_boundaries.parquet", 4.0), ("nucleus_boundaries.parquet", 2.0)):
        rings = [_square(x, y, half * pixel_size) for x, y in um]
        xy = np.concatenate(rings)
        pq.write_table(pa.table({
            "cell_id": np.repeat(cell_id, 5), "vertex_x": xy[:, 0].astype(np.float32),
            "vertex_y": xy[:, 1].astype(np.float32), "label_id": np.repeat(labels, 5),
        }), p / name)

    rng = np.random.default_rng(seed)
    owner = np.repeat(np.arange(n_cells), counts.sum(1))
    gene = np.concatenate([np.repeat(np.arange(len(GENES)), c) for c in counts])
    jitter = rng.uniform(-3, 3, (len(owner), 2)) * pixel_size
    pq.write_table(pa.table({
        "transcript_id": np.arange(len(owner), dtype=np.uint64), "cell_id": cell_id[owner],
        "overlaps_nucleus": np.zeros(len(owner), np.uint8), "feature_name": np.array(GENES)[gene],
        "x_location": (um[owner, 0] + jitter[:, 0]).astype(np.float32),
        "y_location": (um[owner, 1] + jitter[:, 1]).astype(np.float32),
        "z_location": np.full(len(owner), 10.0, np.float32), "qv": np.full(len(owner), 40.0, np.float32),
    }), p / "transcripts.parquet")

    focus = p / "morphology_focus"
    focus.mkdir()
    dapi = (_paint(shape, centre_px, 2, np.full(n_cells, 3000, np.uint16)) + 100).astype(np.uint16)
    tifffile.imwrite(focus / "morphology_focus_0000.ome.tif", dapi, ome=True, compression="zlib",
                     metadata={"axes": "YX", "Channel": {"Name": ["DAPI"]}})
    return p, {"cell_id": cell_id, "centre_px": centre_px, "label": labels, "counts": counts, "kind": kind,
               "pixel_size": pixel_size}


# ------------------------------------------------------------------------------------------------ MERSCOPE
def write_merscope(path, n_cells: int = 20, *, seed: int = 0, pixels_per_um: float = 2.0) -> tuple[Path, dict]:
    """A MERSCOPE region folder (``.../<date>_<slide>/region_0``): µm in the tables, an affine to mosaic pixels.

    Cells are 8 µm squares every 12 µm, starting at (100, 200) µm; the mosaic origin is at
    (95, 195) µm.  ``info["centre_um"]`` and ``info["centre_px"]`` are the cell centres (x, y).
    """
    import geopandas as gpd
    import tifffile
    from shapely.geometry import MultiPolygon, Polygon

    p = _folder(path)
    centre_um = _grid(n_cells, 12.0, 0.0) + [100.0, 200.0]
    origin = np.array([95.0, 195.0])
    affine = np.array([[pixels_per_um, 0, -origin[0] * pixels_per_um],
                       [0, pixels_per_um, -origin[1] * pixels_per_um], [0, 0, 1]])
    centre_px = (centre_um - origin) * pixels_per_um
    counts, kind = _counts(n_cells, seed)
    ids = np.array([str(1_000_000_000 + i) for i in range(n_cells)])

    cbg = pd.DataFrame(counts, columns=GENES, index=pd.Index(ids, name="cell"))
    cbg["Blank-0"] = 0
    cbg.to_csv(p / "cell_by_gene.csv")
    half = 4.0
    meta = pd.DataFrame({
        "fov": 0, "volume": 300.0, "center_x": centre_um[:, 0], "center_y": centre_um[:, 1],
        "min_x": centre_um[:, 0] - half, "max_x": centre_um[:, 0] + half,
        "min_y": centre_um[:, 1] - half, "max_y": centre_um[:, 1] + half,
    }, index=pd.Index(ids, name="EntityID"))
    meta.to_csv(p / "cell_metadata.csv")

    rows = []
    for z in range(2):  # the real file repeats each cell on every z plane; the reader keeps ZIndex 0
        for i, (x, y) in enumerate(centre_um):
            rows.append({"ID": z * n_cells + i, "EntityID": int(ids[i]), "ZIndex": z, "Type": "cell",
                         "ZLevel": 1.5 * (z + 1), "Name": None, "ParentID": None, "ParentType": None,
                         "Geometry": MultiPolygon([Polygon(_square(x, y, half))])})
    gpd.GeoDataFrame(rows, geometry="Geometry").to_parquet(p / "cell_boundaries.parquet")

    owner = np.repeat(np.arange(n_cells), counts.sum(1))
    gene = np.concatenate([np.repeat(np.arange(len(GENES)), c) for c in counts])
    rng = np.random.default_rng(seed)
    gx = centre_um[owner, 0] + rng.uniform(-3, 3, len(owner))
    gy = centre_um[owner, 1] + rng.uniform(-3, 3, len(owner))
    pd.DataFrame({"barcode_id": gene, "global_x": gx, "global_y": gy, "global_z": 3.0,
                  "x": (gx - origin[0]) * pixels_per_um, "y": (gy - origin[1]) * pixels_per_um, "fov": 0,
                  "gene": np.array(GENES)[gene], "transcript_id": [f"t{i}" for i in range(len(owner))],
                  "cell_id": ids[owner]}).to_csv(p / "detected_transcripts.csv")

    images = p / "images"
    images.mkdir()
    np.savetxt(images / "micron_to_mosaic_pixel_transform.csv", affine, fmt="%.6f", delimiter=" ")
    extent = int(np.ceil((centre_um.max() - origin.min() + 10) * pixels_per_um))
    for stain, value in (("DAPI", 4000), ("PolyT", 2000)):
        img = _paint((extent, extent), centre_px, int(2 * pixels_per_um), np.full(n_cells, value, np.uint16))
        tifffile.imwrite(images / f"mosaic_{stain}_z3.tif", img, compression="zlib")
    return p, {"cell_id": ids, "centre_um": centre_um, "centre_px": centre_px, "counts": counts, "kind": kind,
               "affine": affine}


# ------------------------------------------------------------------------------------------------ CosMx
def write_cosmx(path, n_cells: int = 20, *, seed: int = 0, dataset_id: str = "Run1000_S1_Half",
                fov_size: int = 64) -> tuple[Path, dict]:
    """A CosMx SMI flat-file export with two FOVs side by side (``n_cells`` split between them).

    FOV ``f`` (1, 2) lies at global pixel offset ``(f - 1) * fov_size, 0``.  In each FOV cell
    ``cell_ID`` k (1..) is a 6 px square of label k in ``CellLabels/CellLabels_F00f.tif``; local
    pixel coordinates are those of the image after the vertical flip the reader applies.
    ``info["centre_global"]`` gives the (x, y) global-pixel centre of each row of the metadata.
    """
    import tifffile

    p = _folder(path)
    counts, kind = _counts(n_cells, seed)
    per_fov = [n_cells - n_cells // 2, n_cells // 2]
    meta_rows, expr_rows, tx_rows, centres = [], [], [], []
    row = 0
    (p / "CellComposite").mkdir()
    (p / "CellLabels").mkdir()
    for f, n in enumerate(per_fov, start=1):
        local = _grid(n, 10.0, 8.0)
        offset = np.array([(f - 1) * fov_size, 0.0])
        lab = np.zeros((fov_size, fov_size), np.uint16)
        for k, (x, y) in enumerate(np.round(local).astype(int), start=1):
            r = fov_size - y  # the reader flips the image vertically: rows y - 3 .. y + 2 after the flip
            lab[r - 3:r + 3, x - 3:x + 3] = k
        tifffile.imwrite(p / "CellLabels" / f"CellLabels_F{f:03d}.tif", lab, compression="zlib")
        rgb = np.zeros((fov_size, fov_size, 3), np.uint8)
        rgb[..., 2] = np.where(lab > 0, 200, 20)
        tifffile.imwrite(p / "CellComposite" / f"CellComposite_F{f:03d}.tif", rgb, photometric="rgb",
                         compression="zlib")
        for k in range(n):
            g = local[k] + offset
            centres.append(g)
            meta_rows.append({"fov": f, "cell_ID": k + 1, "Area": 36, "AspectRatio": 1.0,
                              "CenterX_local_px": local[k, 0], "CenterY_local_px": local[k, 1],
                              "CenterX_global_px": g[0], "CenterY_global_px": g[1], "Width": 6, "Height": 6,
                              "Mean.DAPI": 100.0})
            expr_rows.append({"fov": f, "cell_ID": k + 1, **dict(zip(GENES, counts[row].tolist()))})
            for gi, c in enumerate(counts[row]):
                for _ in range(int(c)):
                    tx_rows.append({"fov": f, "cell_ID": k + 1, "x_global_px": g[0], "y_global_px": g[1],
                                    "x_local_px": local[k, 0], "y_local_px": local[k, 1], "z": 0,
                                    "target": GENES[gi], "CellComp": "Nuclear"})
            row += 1
        # background row (cell_ID 0) as in real exports: counts outside any cell
        expr_rows.append({"fov": f, "cell_ID": 0, **dict.fromkeys(GENES, 1)})
    pd.DataFrame(expr_rows).to_csv(p / f"{dataset_id}_exprMat_file.csv", index=False)
    pd.DataFrame(meta_rows).to_csv(p / f"{dataset_id}_metadata_file.csv", index=False)
    pd.DataFrame({"fov": [1, 2], "x_global_px": [0.0, float(fov_size)], "y_global_px": [0.0, 0.0]}).to_csv(
        p / f"{dataset_id}_fov_positions_file.csv", index=False)
    pd.DataFrame(tx_rows).to_csv(p / f"{dataset_id}_tx_file.csv", index=False)
    return p, {"centre_global": np.array(centres), "counts": counts, "kind": kind, "per_fov": per_fov}


# ------------------------------------------------------------------------------------------------ Visium HD
def write_visium_hd(path, side_um: int = 64, *, bins=(8, 16), seed: int = 0,
                    microns_per_pixel: float = 0.5) -> tuple[Path, dict]:
    """A Visium HD Space Ranger ``outs`` folder: a ``side_um`` µm square of tissue binned at ``bins`` µm.

    Bin ``(row, col)`` of size ``b`` has its centre at full-resolution pixel
    ``((col + 0.5) * b, (row + 0.5) * b) / microns_per_pixel + 20`` (x, y).  ``info[b]`` holds
    the barcodes and centres of the bins of size ``b``.
    """
    import tifffile
    from PIL import Image

    p = _folder(path)
    info: dict = {}
    margin = 20.0
    full = int(side_um / microns_per_pixel + 2 * margin)
    hires_scalef, lowres_scalef = 0.5, 0.25
    base = {"tissue_hires_scalef": hires_scalef, "tissue_lowres_scalef": lowres_scalef,
            "fiducial_diameter_fullres": 10.0, "regist_target_img_scalef": hires_scalef}
    layout = {"file_format": "1.0", "transform": [1, 0, 0, 0, 1, 0, 0, 0, 1], "num_rows": 3350, "num_cols": 3350}
    metadata = {"hd_layout_json": json.dumps(layout), "transform_matrices": {}}
    with h5py.File(p / "feature_slice.h5", "w") as f:
        f.attrs["metadata_json"] = json.dumps(metadata)
    spatial = p / "spatial"
    spatial.mkdir()
    (spatial / "scalefactors_json.json").write_text(json.dumps(
        {**base, "spot_diameter_fullres": 2 / microns_per_pixel, "bin_size_um": 2.0,
         "microns_per_pixel": microns_per_pixel}))
    rng = np.random.default_rng(seed)
    img = np.full((full, full, 3), 230, np.uint8)
    img[int(margin):-int(margin), int(margin):-int(margin)] = (180, 90, 160)  # H&E-ish tissue
    (p / "microscope_image").mkdir()
    tifffile.imwrite(p / "microscope_image" / "tissue_image.tif", img, photometric="rgb", compression="zlib")
    for name, s in (("tissue_hires_image.png", hires_scalef), ("tissue_lowres_image.png", lowres_scalef)):
        n = max(int(full * s), 1)
        Image.fromarray(img[:: int(round(1 / s)), :: int(round(1 / s))][:n, :n]).save(spatial / name)
    for b in bins:
        folder = p / "binned_outputs" / f"square_{b:03d}um"
        (folder / "spatial").mkdir(parents=True)
        n_side = side_um // b
        r, c = np.divmod(np.arange(n_side * n_side), n_side)
        barcodes = np.array([f"s_{b:03d}um_{ri:05d}_{ci:05d}-1" for ri, ci in zip(r, c)])
        x = ((c + 0.5) * b) / microns_per_pixel + margin
        y = ((r + 0.5) * b) / microns_per_pixel + margin
        pd.DataFrame({"barcode": barcodes, "in_tissue": 1, "array_row": r, "array_col": c,
                      "pxl_row_in_fullres": y, "pxl_col_in_fullres": x}).to_parquet(
            folder / "spatial" / "tissue_positions.parquet", index=False)
        (folder / "spatial" / "scalefactors_json.json").write_text(json.dumps(
            {**base, "spot_diameter_fullres": b / microns_per_pixel, "bin_size_um": float(b),
             "microns_per_pixel": microns_per_pixel}))
        counts = rng.poisson(np.where((c < n_side // 2)[:, None], [6, 4, 0.2, 0.2, 3, 3], [0.2, 0.2, 6, 4, 3, 3]))
        write_10x_h5(folder / "filtered_feature_bc_matrix.h5", counts, barcodes)
        write_10x_h5(folder / "raw_feature_bc_matrix.h5", counts, barcodes)
        info[b] = {"barcode": barcodes, "centre_px": np.stack([x, y], axis=1), "array_row": r, "array_col": c}
    info["microns_per_pixel"] = microns_per_pixel
    return p, info
