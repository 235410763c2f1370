"""Spatial AnnData -> napari layer data (no Qt, no napari import).

Conventions follow scanpy/squidpy: ``obsm['spatial']`` holds (x, y) in full-resolution pixels;
``uns['spatial'][library_id]`` holds ``images`` (``hires``, ``lowres``) and ``scalefactors``.
napari wants (row, col), so points are ``spatial[:, ::-1]`` and an image of scale factor ``s``
is shown with ``scale = 1 / s`` so that both live in full-resolution pixels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..core.errors import AnnotatabilityInputError

__all__ = [
    "COORD_COLUMNS", "has_coordinates", "coordinates", "library", "tissue_image", "spot_diameter",
    "category_colors", "layer_data", "rgba_for", "rgba_from", "default_color_key", "SpatialMismatchWarning",
    "SECTION_COLUMNS", "section_column", "series_rgba",
]

#: obs column pairs read as (x, y) pixel coordinates when obsm['spatial'] is missing
#: (generic, Xenium cells.csv, MERSCOPE cell_metadata, CosMx)
COORD_COLUMNS = (("x", "y"), ("x_centroid", "y_centroid"), ("center_x", "center_y"),
                 ("CenterX_global_px", "CenterY_global_px"), ("X", "Y"))


def has_coordinates(adata) -> bool:
    return "spatial" in adata.obsm or any(x in adata.obs and y in adata.obs for x, y in COORD_COLUMNS)


def coordinates(adata) -> np.ndarray:
    """(n, 2) float array of (x, y) pixel coordinates."""
    if "spatial" in adata.obsm:
        try:
            xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise AnnotatabilityInputError(f"obsm['spatial'] is not numeric ({err})") from None
        if xy.ndim != 2 or xy.shape[1] < 2:
            raise AnnotatabilityInputError(f"obsm['spatial'] has shape {xy.shape}, expected (n_obs, 2)")
        xy = xy[:, :2]
    else:
        for x, y in COORD_COLUMNS:
            if x in adata.obs and y in adata.obs:
                cols = adata.obs[[x, y]]
                if not all(pd.api.types.is_numeric_dtype(cols[c]) for c in (x, y)):
                    raise AnnotatabilityInputError(
                        f"obs columns {x!r}/{y!r} are read as coordinates but are not numeric "
                        f"({cols[x].dtype}/{cols[y].dtype})"
                    )
                xy = cols.to_numpy(dtype=np.float64)
                break
        else:
            raise AnnotatabilityInputError(
                "no spatial coordinates: expected obsm['spatial'] or obs columns "
                + ", ".join(f"{x}/{y}" for x, y in COORD_COLUMNS)
            )
    if not np.isfinite(xy).all():
        raise AnnotatabilityInputError(f"{int((~np.isfinite(xy)).any(1).sum())} cells have NaN/inf coordinates")
    return xy


def library(adata, library_id: str | None = None) -> tuple[str | None, dict]:
    """The ``uns['spatial']`` entry to use (the only one, or ``library_id``)."""
    spatial = adata.uns.get("spatial")
    if not isinstance(spatial, dict) or not spatial:
        return None, {}
    if library_id is None:
        library_id = next(iter(spatial))
    if library_id not in spatial:
        raise AnnotatabilityInputError(f"library {library_id!r} not in uns['spatial'] ({', '.join(spatial)})")
    return library_id, spatial[library_id]


def tissue_image(adata, library_id: str | None = None) -> tuple[np.ndarray, float, str] | None:
    """``(image, scale, resolution)`` of the best non-blank image, or None.

    ``scale`` maps image pixels to full-resolution pixels (1 / scalefactor).  An image whose
    pixels are all equal (a placeholder, as the all-black ``hires`` of some test data) is skipped.
    """
    _, lib = library(adata, library_id)
    images = lib.get("images", {}) or {}
    factors = lib.get("scalefactors", {}) or {}
    for res in ("hires", "lowres"):
        img = images.get(res)
        if img is None:
            continue
        img = np.asarray(img)
        key = f"tissue_{res}_scalef"
        if key not in factors:
            raise AnnotatabilityInputError(f"uns['spatial'] has a {res} image but no scalefactors[{key!r}]")
        scalef = float(factors[key])
        if not scalef > 0:
            raise AnnotatabilityInputError(f"scalefactors[{key!r}] must be > 0, got {scalef}")
        if img.ndim == 3 and img.shape[-1] == 4:
            img = img[..., :3]  # drop alpha
        if img.ndim < 2 or img.size == 0 or img.min() == img.max():
            continue
        return img, 1.0 / scalef, res
    return None


def spot_diameter(adata, xy: np.ndarray, library_id: str | None = None) -> float:
    """``spot_diameter_fullres`` when known, else the median nearest-neighbour spacing."""
    _, lib = library(adata, library_id)
    d = (lib.get("scalefactors") or {}).get("spot_diameter_fullres")
    if d is not None and float(d) > 0:
        return float(d)
    if len(xy) < 2:
        return 10.0
    dist, _ = cKDTree(xy).query(xy, k=2)
    nn = dist[:, 1]
    nn = nn[nn > 0]
    return float(np.median(nn)) if nn.size else 10.0


def category_colors(adata, key: str) -> dict[str, str]:
    """Category -> hex colour, from ``uns[f'{key}_colors']`` when it matches, else a palette."""
    col = adata.obs[key]
    cats = list(col.cat.categories) if isinstance(col.dtype, pd.CategoricalDtype) else sorted(col.astype(str).unique())
    stored = adata.uns.get(f"{key}_colors")
    if stored is not None and len(stored) >= len(cats):
        return {str(c): str(stored[i]) for i, c in enumerate(cats)}
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["tab20" if len(cats) > 10 else "tab10"]
    return {str(c): to_hex(cmap(i % cmap.N)) for i, c in enumerate(cats)}


def default_color_key(adata) -> str | None:
    """A categorical obs column to colour spots by when a file is opened."""
    from ..core import keys

    info = adata.uns.get(keys.UNS, {})
    for key in (keys.CATEGORY, info.get("label_key") if isinstance(info, dict) else None):
        if key and key in adata.obs:
            return key
    for key in adata.obs.columns:
        if isinstance(adata.obs[key].dtype, pd.CategoricalDtype) and 1 < len(adata.obs[key].cat.categories) <= 50:
            return key
    return None


#: obs columns that say which section (``uns['spatial']`` library) each spot belongs to
SECTION_COLUMNS = ("library_id", "sample_id", "sample", "section", "slide")


def section_column(adata) -> str | None:
    """The obs column naming each spot's library when ``uns['spatial']`` holds several, else None."""
    spatial = adata.uns.get("spatial")
    if not isinstance(spatial, dict) or len(spatial) < 2:
        return None
    libraries = set(map(str, spatial))
    for col in SECTION_COLUMNS:
        if col in adata.obs:
            values = set(adata.obs[col].astype(str).unique())
            if values <= libraries and len(values) > 1:
                return col
    return None


def layer_data(adata, name: str, library_id: str | None = None) -> list[tuple]:
    """napari LayerData tuples: the tissue image (if any) and the spots as Points.

    An AnnData of several sections (``uns['spatial']`` with several libraries and an obs column
    such as ``library_id`` naming each spot's) gives one image and one Points layer per section,
    all sharing the one AnnData (``metadata['rows']``: the section's obs rows), so one training
    scores them jointly and each is drawn on its own image.
    """
    if adata.n_obs == 0:
        raise AnnotatabilityInputError("the AnnData has no cells (n_obs == 0)")
    xy = coordinates(adata)
    column = section_column(adata) if library_id is None else None
    if column is None:
        return _section_layers(adata, name, xy, np.arange(adata.n_obs), library_id, whole=True)
    out: list[tuple] = []
    sections = adata.obs[column].astype(str).to_numpy()
    for lib in (str(k) for k in adata.uns["spatial"]):
        rows = np.flatnonzero(sections == lib)
        if rows.size:
            out += _section_layers(adata, f"{name} {lib}", xy, rows, lib, whole=False)
    return out


def _section_layers(adata, name: str, xy: np.ndarray, rows: np.ndarray, library_id, whole: bool) -> list[tuple]:
    out: list[tuple] = []
    pts = xy[rows]
    img = tissue_image(adata, library_id)
    if img is not None:
        image, scale, res = img
        _warn_if_off_image(pts, image.shape[:2], scale, res)
        out.append((image, {"name": f"{name} tissue ({res})", "scale": (scale, scale),
                            "rgb": image.ndim == 3, "metadata": {"adata": adata}}, "image"))
    diameter = spot_diameter(adata, pts, library_id)
    color_key = default_color_key(adata)
    obs = adata.obs if whole else adata.obs.iloc[rows]
    metadata = {"adata": adata, "color_by": color_key}
    if not whole:
        metadata["rows"] = rows
        metadata["section"] = library_id
    kwargs = {
        "name": f"{name} spots",
        "size": diameter,
        "features": obs.reset_index(drop=True),
        "metadata": metadata,
        "border_width": 0,
        "opacity": 0.9,
    }
    if color_key is not None:
        colors = rgba_for(adata, color_key)
        kwargs["face_color"] = colors if whole else colors[rows]
    out.append((pts[:, ::-1].copy(), kwargs, "points"))
    return out


class SpatialMismatchWarning(UserWarning):
    """Spots and tissue image do not line up (wrong scale factor or coordinates)."""


def _warn_if_off_image(xy: np.ndarray, shape: tuple[int, int], scale: float, res: str) -> None:
    """Warn when many spots fall outside the image: a scale factor or coordinate mismatch."""
    h, w = shape[0] * scale, shape[1] * scale  # image extent in full-resolution pixels
    outside = (xy[:, 0] < 0) | (xy[:, 1] < 0) | (xy[:, 0] > w) | (xy[:, 1] > h)
    share = float(outside.mean())
    if share > 0.05:
        import warnings

        warnings.warn(
            f"{int(outside.sum())} of {len(xy)} spots ({share:.0%}) lie outside the {res} tissue image "
            f"({w:.0f} x {h:.0f} full-resolution pixels): check scalefactors['tissue_{res}_scalef'] and "
            "obsm['spatial'] (x, y in full-resolution pixels)",
            SpatialMismatchWarning,
            stacklevel=3,
        )


def rgba_for(adata, key: str) -> np.ndarray:
    """(n, 4) RGBA array colouring cells by a categorical obs column."""
    return series_rgba(adata.obs[key], category_colors(adata, key))


def series_rgba(series: pd.Series, colors: dict[str, str]) -> np.ndarray:
    """(n, 4) RGBA of a column through category colours; a categorical is mapped by its codes (fast)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        from matplotlib.colors import to_rgba

        grey = (0.6, 0.6, 0.6, 1.0)
        table = np.array([to_rgba(colors.get(str(c), grey)) for c in series.cat.categories] + [grey])
        codes = series.cat.codes.to_numpy()
        return table[np.where(codes < 0, len(table) - 1, codes)]
    return rgba_from(series.astype(str).to_numpy(), colors)


def rgba_from(values: np.ndarray, colors: dict[str, str]) -> np.ndarray:
    """(n, 4) RGBA for string ``values`` through a value -> colour mapping (grey if unmapped)."""
    from matplotlib.colors import to_rgba

    cats, codes = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    grey = (0.6, 0.6, 0.6, 1.0)
    table = np.array([to_rgba(colors[c]) if c in colors else grey for c in cats])
    return table[codes.ravel()]
