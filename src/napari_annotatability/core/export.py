"""Per-cell exports, atomically: CSV (coordinates + obs), GeoJSON (QuPath, geopandas) of spots as circles
or of cells as their real polygons, and a CSV of cell groups (``cell_id,group``) that Xenium Explorer
imports as cell groups and QuPath or pandas read as a plain table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import AnnotatabilityInputError
from .io import atomic_write, check_output_path

__all__ = ["spots_table", "write_spots_csv", "write_spots_geojson", "write_cells_geojson", "cell_groups_table",
           "write_cell_groups_csv", "CELL_ID_COLUMNS"]

#: obs columns that hold the instrument's own cell id (Xenium ``cell_id``, MERSCOPE ``EntityID``,
#: CosMx ``cell_ID``), used as ``cell_id`` in the cell-groups CSV; else the obs names
CELL_ID_COLUMNS = ("cell_id", "EntityID", "cell_ID", "cell")


def _xy(adata) -> np.ndarray:
    if "spatial" not in adata.obsm:
        raise AnnotatabilityInputError("obsm['spatial'] is missing: nothing to place the spots with")
    xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)[:, :2]
    if not np.isfinite(xy).all():
        raise AnnotatabilityInputError("obsm['spatial'] has NaN or infinite coordinates")
    return xy


def spots_table(adata) -> pd.DataFrame:
    """One row per spot: ``cell`` (obs name), ``x``, ``y`` (full-resolution pixels), then obs."""
    xy = _xy(adata)
    obs = adata.obs.reset_index(drop=True)
    front = pd.DataFrame({"cell": adata.obs_names.to_numpy(), "x": xy[:, 0], "y": xy[:, 1]})
    clash = [c for c in obs.columns if c in front.columns]
    return pd.concat([front, obs.rename(columns={c: f"obs_{c}" for c in clash})], axis=1)


def _atomic_text(path: Path, write) -> Path:
    def to_file(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            write(fh)

    return atomic_write(path, to_file)


def write_spots_csv(adata, path, *, protect=()) -> Path:
    """Write :func:`spots_table` as CSV (atomic; refuses the paths in ``protect``)."""
    out = check_output_path(path, protect=protect)
    table = spots_table(adata)
    return _atomic_text(out, lambda fh: table.to_csv(fh, index=False))


def _json_value(v):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v if isinstance(v, (int, float, bool, str)) else str(v)


def write_spots_geojson(adata, path, *, diameter: float | None = None, vertices: int = 24, protect=()) -> Path:
    """Write spots as a GeoJSON FeatureCollection with their obs as properties.

    Spots are circles (polygons of ``vertices`` points) of ``diameter`` full-resolution pixels --
    by default ``spot_diameter_fullres`` when ``uns['spatial']`` has it -- which QuPath imports as
    detections; without a diameter they are Points.  Coordinates are (x, y) full-resolution
    pixels, the image's pixel grid, as QuPath and geopandas expect.
    """
    out = check_output_path(path, protect=protect)
    xy = _xy(adata)
    if diameter is None:
        for lib in (adata.uns.get("spatial") or {}).values():
            d = (lib.get("scalefactors") or {}).get("spot_diameter_fullres")
            if d:
                diameter = float(d)
                break
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    ring = np.column_stack([np.cos(angles), np.sin(angles)])
    obs = adata.obs
    columns = {c: obs[c].astype(object).where(obs[c].notna(), None).to_numpy() for c in obs.columns}
    features = []
    for i, (name, (x, y)) in enumerate(zip(adata.obs_names, xy)):
        if diameter:
            pts = ring * (diameter / 2) + (x, y)
            coords = [[[float(a), float(b)] for a, b in np.vstack([pts, pts[:1]])]]
            geometry = {"type": "Polygon", "coordinates": coords}
        else:
            geometry = {"type": "Point", "coordinates": [float(x), float(y)]}
        props = {"cell": str(name), **{c: _json_value(v[i]) for c, v in columns.items()}}
        features.append({"type": "Feature", "id": str(name), "geometry": geometry, "properties": props})
    doc = {"type": "FeatureCollection", "features": features}
    return _atomic_text(out, lambda fh: json.dump(doc, fh))


def _properties(adata, rows: np.ndarray) -> tuple[dict, np.ndarray]:
    obs = adata.obs
    columns = {c: obs[c].astype(object).where(obs[c].notna(), None).to_numpy()[rows] for c in obs.columns}
    return columns, adata.obs_names.to_numpy()[rows]


def write_cells_geojson(adata, path, polygons, *, rows=None, protect=()) -> Path:
    """Write cells as their boundary polygons (a GeoJSON FeatureCollection, obs as properties).

    ``polygons``: one shapely geometry per row in ``rows`` (all obs rows when None), e.g. the
    ``cell_polygons`` GeoSeries of a layer of cells, in its world (x, y) coordinates.  Cells
    without a geometry (None / empty) are written as their centroid from ``obsm['spatial']``
    when there is one, else left out.
    """
    from shapely.geometry import mapping

    out = check_output_path(path, protect=protect)
    rows = np.arange(adata.n_obs) if rows is None else np.asarray(rows, dtype=np.int64)
    geoms = list(getattr(polygons, "values", polygons))
    if len(geoms) != len(rows):
        raise AnnotatabilityInputError(f"{len(geoms)} cell polygons for {len(rows)} cells: they must match one to one")
    xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)[:, :2] if "spatial" in adata.obsm else None
    columns, names = _properties(adata, rows)
    features = []
    for i, (row, geom) in enumerate(zip(rows, geoms)):
        if geom is not None and not getattr(geom, "is_empty", False):
            geometry = mapping(geom)
        elif xy is not None and np.isfinite(xy[row]).all():
            geometry = {"type": "Point", "coordinates": [float(xy[row, 0]), float(xy[row, 1])]}
        else:
            continue
        props = {"cell": str(names[i]), **{c: _json_value(v[i]) for c, v in columns.items()}}
        features.append({"type": "Feature", "id": str(names[i]), "geometry": _plain(geometry), "properties": props})
    doc = {"type": "FeatureCollection", "features": features}
    return _atomic_text(out, lambda fh: json.dump(doc, fh))


def _plain(obj):
    """shapely's ``mapping`` as JSON-ready lists (it gives tuples)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return float(obj) if isinstance(obj, (np.floating, float)) else obj


def cell_groups_table(adata, key: str, *, rows=None) -> pd.DataFrame:
    """``cell_id, group``: the value of obs ``key`` for each cell (rows: all when None).

    ``cell_id`` is the instrument's id (the first of ``CELL_ID_COLUMNS`` in obs), else the obs name:
    the id Xenium Explorer matches when it imports the file as cell groups.  Cells without a value
    are left out (Xenium Explorer refuses empty groups).
    """
    if key not in adata.obs:
        raise AnnotatabilityInputError(f"obs[{key!r}] is missing: nothing to group the cells by")
    rows = np.arange(adata.n_obs) if rows is None else np.asarray(rows, dtype=np.int64)
    id_col = next((c for c in CELL_ID_COLUMNS if c in adata.obs and c != key), None)
    ids = adata.obs[id_col].to_numpy()[rows] if id_col else adata.obs_names.to_numpy()[rows]
    group = adata.obs[key].iloc[rows]
    table = pd.DataFrame({"cell_id": pd.Series(ids).astype(str).to_numpy(),
                          "group": group.astype(str).to_numpy()})
    return table[group.notna().to_numpy()].reset_index(drop=True)


def write_cell_groups_csv(adata, path, key: str, *, rows=None, protect=()) -> Path:
    """Write :func:`cell_groups_table` as ``cell_id,group`` CSV (atomic; refuses ``protect``)."""
    out = check_output_path(path, protect=protect)
    table = cell_groups_table(adata, key, rows=rows)
    return _atomic_text(out, lambda fh: table.to_csv(fh, index=False))
