"""Per-spot exports: CSV (coordinates + features) and GeoJSON (QuPath, geopandas), atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import AnnotatabilityInputError
from .io import atomic_write, check_output_path

__all__ = ["spots_table", "write_spots_csv", "write_spots_geojson"]


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
