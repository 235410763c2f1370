"""SpatialData ``.zarr`` -> an AnnData in scanpy's spatial layout (table + image).

Uses the ``spatialdata`` library (squidpy already depends on it).  The table's annotated
element (circles of a Visium section, cell polygons, points or labels) gives each row a
centroid in one coordinate system (``global`` when present); the first image, at a level of at
most ``max_side`` pixels, becomes ``uns['spatial'][name]['images']['hires']`` with the scale
factor that maps it into that coordinate system.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..core.errors import AnnotatabilityInputError

__all__ = ["read_spatialdata_table"]


def _linear_part(transformation, axes=("x", "y")) -> tuple[float, np.ndarray]:
    """(isotropic scale, translation) of a 2-D transformation; raise if it rotates or shears."""
    m = np.asarray(transformation.to_affine_matrix(input_axes=axes, output_axes=axes), dtype=float)
    sx, sy = m[0, 0], m[1, 1]
    if abs(m[0, 1]) > 1e-9 or abs(m[1, 0]) > 1e-9 or not np.isclose(sx, sy, rtol=1e-6):
        raise AnnotatabilityInputError("the image's transformation rotates, shears or scales x and y differently")
    return float(sx), m[:2, 2]


def _pick_image(sdata, coordinate_system: str, max_side: int):
    from spatialdata.transformations import get_transformation

    for name, element in sdata.images.items():
        if coordinate_system not in get_transformation(element, get_all=True):
            continue
        if hasattr(element, "children") and len(element.children):  # multiscale: DataTree
            levels = [element[k].ds[next(iter(element[k].ds.data_vars))] for k in element.children]
            full = levels[0]
            arr = next((lv for lv in levels if max(lv.sizes["y"], lv.sizes["x"]) <= max_side), levels[-1])
            extra = full.sizes["x"] / arr.sizes["x"]
        else:
            arr, extra = element, 1.0
        scale, shift = _linear_part(get_transformation(element, coordinate_system))
        if not np.allclose(shift, 0, atol=1e-6):
            warnings.warn(f"image {name!r} is translated in {coordinate_system!r}; it is not shown",
                          UserWarning, stacklevel=3)
            continue
        img = np.asarray(arr.transpose("y", "x", "c").values if "c" in arr.dims else arr.values)
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        if img.dtype != np.uint8 and img.ndim == 3:
            hi = float(np.percentile(img, 99.5)) or 1.0
            img = (np.clip(img / hi, 0, 1) * 255).astype(np.uint8)
        return name, img, scale * extra
    return None


def read_spatialdata_table(path, *, table: str | None = None, max_side: int = 4000):
    """The table of a SpatialData store with ``obsm['spatial']`` and ``uns['spatial']`` filled in."""
    try:
        import spatialdata as sd
        from spatialdata.models import get_table_keys
    except ImportError as err:  # pragma: no cover - squidpy brings it
        raise AnnotatabilityInputError(
            "reading SpatialData needs the 'spatialdata' package: pip install spatialdata"
        ) from err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdata = sd.read_zarr(Path(path))
    if not sdata.tables:
        raise AnnotatabilityInputError(f"{Path(path).name} has no table")
    name = table or ("table" if "table" in sdata.tables else next(iter(sdata.tables)))
    if name not in sdata.tables:
        raise AnnotatabilityInputError(f"table {name!r} not in {Path(path).name} ({', '.join(sdata.tables)})")
    adata = sdata.tables[name].copy()
    region, region_key, instance_key = get_table_keys(adata)
    regions = [region] if isinstance(region, str) else list(region)
    systems = list(sdata.coordinate_systems)
    cs = "global" if "global" in systems else systems[0]

    xy = np.full((adata.n_obs, 2), np.nan)
    diameters = []
    for reg in regions:
        if reg not in sdata:
            raise AnnotatabilityInputError(f"the table annotates {reg!r}, which is not in the store")
        element = sdata[reg]
        rows = (adata.obs[region_key] == reg).to_numpy() if region_key in adata.obs else np.ones(adata.n_obs, bool)
        cents = sd.get_centroids(element, coordinate_system=cs)
        cents = cents.compute() if hasattr(cents, "compute") else cents
        ids = adata.obs.loc[rows, instance_key].to_numpy()
        missing = ~np.isin(ids, cents.index.to_numpy())
        if missing.any():
            raise AnnotatabilityInputError(f"{int(missing.sum())} table rows have no matching shape in {reg!r}")
        xy[rows] = cents.loc[ids, ["x", "y"]].to_numpy(dtype=float)
        if "radius" in getattr(element, "columns", ()):
            from spatialdata.transformations import get_transformation

            scale, _ = _linear_part(get_transformation(element, cs))
            diameters.append(2.0 * float(np.median(element["radius"])) * scale)
    adata.obsm["spatial"] = xy
    library = {"images": {}, "scalefactors": {}, "metadata": {"source": str(path), "coordinate_system": cs}}
    if diameters:
        library["scalefactors"]["spot_diameter_fullres"] = float(np.median(diameters))
    picked = _pick_image(sdata, cs, max_side)
    if picked is not None:
        img_name, img, scale = picked
        library["images"]["hires"] = img
        library["scalefactors"]["tissue_hires_scalef"] = 1.0 / scale
        library["metadata"]["image"] = img_name
    adata.uns["spatial"] = {Path(path).stem: library}
    return adata
