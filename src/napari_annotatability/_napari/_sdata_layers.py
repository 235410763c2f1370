"""A SpatialData object -> napari layer data, lazily and aligned in one world coordinate system.

Images stay dask pyramids (``multiscale=True``, level 0 first, nothing computed but a small sample
of the smallest level for contrast limits).  Cells are drawn as their segmentation: a Labels layer
over a :class:`~._mask.CellMask` for label masks, rasterised polygons (MERSCOPE, CosMx, bento) and
Visium HD square bins; circles (Visium spots) stay Points.  Every layer carries its element's
transformation to the coordinate system as its ``affine`` (Points: their data are world positions,
since a point's size ignores ``affine``).

Pixel convention: SpatialData puts pixel ``i``'s centre at intrinsic ``i + 0.5``, napari at ``i``;
the affine given to napari includes that half-pixel shift, so a world position lands on the same
pixel in both.  No Qt, no viewer: the functions return LayerDataTuples.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ._cell_raster import bins_from_centres, grid_of_bins, rasterize_polygons
from ._spatial import default_color_key, rgba_for, spot_diameter

__all__ = ["sdata_layer_data", "napari_affine", "image_levels", "contrast_limits", "lazy_pyramid"]

#: channel colormaps of fluorescence images (one layer per channel, additive)
CHANNEL_COLORMAPS = ("blue", "green", "magenta", "red", "cyan", "yellow")
#: channels visible on opening (the others are added hidden)
VISIBLE_CHANNELS = 3
#: pixels read from the smallest level to set contrast limits
SAMPLE_PIXELS = 1 << 20
#: a single-scale image with a side above this many pixels is shown through a lazy strided pyramid
PYRAMID_ABOVE = 2048
HALF_PIXEL = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])


@dataclass
class _Section:
    region: str | None
    cs: str
    rows: np.ndarray  # obs rows, in table order
    offset: np.ndarray = field(default_factory=lambda: np.zeros(2))  # world (row, col) shift


# -- transformations ------------------------------------------------------------------------------
def napari_affine(element, coordinate_system: str, offset=(0.0, 0.0), *, half_pixel: bool = True) -> np.ndarray:
    """(3, 3) affine from napari data index (row, col) of level 0 to world (y, x) in the system.

    ``half_pixel=False`` for rasters whose transformation already maps a pixel's index to its centre
    (``spatialdata.rasterize_bins``, which spatialdata-io uses for Visium HD bins: its affine is fitted
    from the bins' grid indices to their centres).
    """
    from spatialdata.transformations import get_transformation

    t = get_transformation(element, coordinate_system)
    m = np.asarray(t.to_affine_matrix(input_axes=("y", "x"), output_axes=("y", "x")), dtype=np.float64)
    if half_pixel:
        m = m @ HALF_PIXEL
    m[:2, 2] += np.asarray(offset, dtype=np.float64)
    return m


def _systems(element) -> list[str]:
    from spatialdata.transformations import get_transformation

    return list(get_transformation(element, get_all=True))


def image_levels(element) -> list:
    """The DataArrays of a raster element, level 0 first (a single-scale element is one level)."""
    if hasattr(element, "children") and len(element.children):
        return [next(iter(element[k].ds.data_vars.values())) for k in element.children]
    return [element]


# -- images ---------------------------------------------------------------------------------------
def lazy_pyramid(levels: list, largest: int = PYRAMID_ABOVE, factor: int = 4) -> list:
    """A single-scale image larger than ``largest`` px a side gets strided coarser levels (lazily).

    Level 0 stays the full-resolution array; napari shows a coarse level when zoomed out instead of
    reading and uploading the whole image (a 6 000 px H&E: 2.9 s -> 0.26 s to first draw here).
    """
    if len(levels) != 1:
        return levels
    out = list(levels)
    while max(out[-1].shape[-2:]) > largest:
        out.append(out[-1][..., ::factor, ::factor])
    return out


def contrast_limits(arr) -> tuple[float, float]:
    """Percentiles (1, 99.5) of a 2-D (dask) array, from at most SAMPLE_PIXELS of it."""
    import dask.array as da

    h, w = arr.shape[-2:]
    if h * w > SAMPLE_PIXELS:  # a grid of windows: touches a few chunks, never the whole level
        k, side = 8, int(np.sqrt(SAMPLE_PIXELS / 64))
        ys = np.linspace(0, max(h - side, 0), k).astype(int)
        xs = np.linspace(0, max(w - side, 0), k).astype(int)
        arr = da.stack([arr[y:y + side, x:x + side] for y in ys for x in xs]) if isinstance(arr, da.Array) else \
            np.stack([arr[y:y + side, x:x + side] for y in ys for x in xs])
    values = np.asarray(arr.compute() if hasattr(arr, "compute") else arr, dtype=np.float64)
    lo, hi = (float(v) for v in np.percentile(values, (1.0, 99.5)))
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def _image_layers(element, el_name: str, section: _Section, units: str, label: str) -> list[tuple]:
    levels = image_levels(element)
    dims = levels[0].dims
    if "z" in dims or not {"y", "x"} <= set(dims):
        return []  # 3-D stacks are not shown with the cells
    order = ("c", "y", "x") if "c" in dims else ("y", "x")
    data = lazy_pyramid([lv.transpose(*order).data for lv in levels])  # dask, lazily transposed
    meta = {"units": units, "coordinate_system": section.cs, "sdata_element": el_name}
    kw = {"affine": napari_affine(element, section.cs, section.offset), "multiscale": len(data) > 1,
          "metadata": meta}
    one = (lambda ds: ds if len(ds) > 1 else ds[0])
    if "c" not in dims:
        return [(one(data), {**kw, "name": f"{label}{el_name}", "contrast_limits": contrast_limits(data[-1])},
                 "image")]
    channels = [str(c) for c in levels[0].coords["c"].values] if "c" in levels[0].coords else \
        [str(i) for i in range(levels[0].sizes["c"])]
    if len(channels) in (3, 4) and data[0].dtype == np.uint8:
        import dask.array as da

        rgb = [da.moveaxis(d[:3], 0, -1) for d in data]
        return [(one(rgb), {**kw, "name": f"{label}{el_name}", "rgb": True}, "image")]
    colormaps = _channel_colormaps(channels)
    out = []
    for i, ch in enumerate(channels):
        ch_data = [d[i] for d in data]
        out.append((one(ch_data), {
            **kw, "metadata": {**meta, "channel": ch}, "name": f"{label}{el_name}: {ch}",
            "contrast_limits": contrast_limits(ch_data[-1]), "visible": i < VISIBLE_CHANNELS,
            "colormap": colormaps[i],
            "blending": "translucent_no_depth" if i == 0 else "additive",
        }, "image"))
    return out


def _channel_colormaps(channels: list[str]) -> list[str]:
    """Gray for one channel; else blue for a nuclear stain (DAPI, Hoechst), the others cycling."""
    if len(channels) == 1:
        return ["gray"]
    nuclear = [any(k in c.lower() for k in ("dapi", "hoechst", "nucle")) for c in channels]
    others = iter(CHANNEL_COLORMAPS[1:] * (len(channels) // len(CHANNEL_COLORMAPS[1:]) + 1))
    first_nuclear = nuclear.index(True) if any(nuclear) else None
    return ["blue" if i == first_nuclear else next(others) for i in range(len(channels))]


# -- cells ----------------------------------------------------------------------------------------
def _centroids(sdata, adata, section: _Section, info: dict) -> np.ndarray:
    """World (row, col) of each row of the section (the table's centroids when in the section's system)."""
    source_cs = (info.get("coordinate_systems") or {}).get(section.region, info.get("coordinate_system"))
    if "spatial" in adata.obsm and (source_cs in (None, section.cs)):
        xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)[section.rows, :2]
    else:
        import spatialdata as sd

        from ._spatial import coordinates

        if section.region is None or section.region not in sdata:
            xy = coordinates(adata)[section.rows]
        else:
            element = sdata[section.region]
            if section.region in sdata.labels:  # chunk by chunk, never the whole mask
                from ..core._sdata_table import label_centroids

                cents = label_centroids(element, section.cs)
            else:
                cents = sd.get_centroids(element, coordinate_system=section.cs)
                cents = cents.compute() if hasattr(cents, "compute") else cents
            ids = adata.obs[_instance_key(adata)].to_numpy()[section.rows]
            xy = cents.loc[ids, ["x", "y"]].to_numpy(dtype=np.float64)
    return xy[:, ::-1] + section.offset


def _instance_key(adata) -> str:
    return adata.uns.get("annotatability_source", {}).get("instance_key") or _table_keys(adata)[2]


def _table_keys(adata):
    from spatialdata.models import get_table_keys

    try:
        return get_table_keys(adata)
    except (ValueError, KeyError):
        return None, None, None


def _row_colors(adata, rows: np.ndarray, key: str | None) -> np.ndarray:
    if key is not None:
        return rgba_for(adata, key)[rows]
    from matplotlib import colormaps

    return np.asarray(colormaps["tab20"](np.arange(len(rows)) % 20))


def _cell_metadata(adata, section: _Section, rows_or_none, centroids, units, key, element_name) -> dict:
    return {"adata": adata, "rows": rows_or_none, "centroids": centroids, "units": units, "color_by": key,
            "coordinate_system": section.cs, "sdata_element": element_name}


def _labels_tuple(levels, cell_ids, affine, adata, section, meta, name) -> tuple:
    from ._mask import CellMask

    mask = CellMask(levels, cell_ids)
    cmap = mask.set_colors(_row_colors(adata, section.rows, meta["color_by"]))
    shown = mask.display_levels()
    meta = {**meta, "mask": mask}
    kw = {"name": name, "affine": affine, "colormap": cmap, "opacity": 0.75, "metadata": meta,
          "multiscale": len(shown) > 1}
    return (shown if len(shown) > 1 else shown[0], kw, "labels")


def _points_tuple(adata, section: _Section, centroids, size, meta, name) -> tuple:
    kw = {"name": name, "size": float(size), "metadata": meta, "border_width": 0, "opacity": 0.9,
          "features": adata.obs.iloc[section.rows].reset_index(drop=True)}
    if meta["color_by"] is not None:
        kw["face_color"] = rgba_for(adata, meta["color_by"])[section.rows]
    return (centroids.copy(), kw, "points")


def _is_square_bins(gdf) -> bool:
    """Equal axis-aligned boxes (Visium HD bins), judged on the first 200 shapes."""
    import shapely

    from ..core._sdata_table import axis_aligned_boxes

    geoms = np.asarray(gdf.geometry.iloc[: min(len(gdf), 200)], dtype=object)
    if any(g is None for g in geoms) or not axis_aligned_boxes(geoms):
        return False
    area = shapely.area(geoms)
    return bool(np.allclose(area, area[0], rtol=1e-2))


def _shapes_layer(sdata, adata, section, meta, centroids, name) -> tuple:
    """Circles -> Points; square bins -> a labels grid; polygons -> a rasterised label mask."""
    import spatialdata as sd
    from spatialdata.transformations import get_transformation

    gdf = sdata[section.region]
    m = get_transformation(gdf, section.cs).to_affine_matrix(input_axes=("x", "y"), output_axes=("x", "y"))
    linear = float(np.sqrt(abs(np.linalg.det(np.asarray(m, dtype=float)[:2, :2]))))
    if "radius" in gdf.columns:  # circles: spots stay Points, sized in world units
        ids = adata.obs[_instance_key(adata)].to_numpy()[section.rows]
        radius = gdf["radius"].reindex(ids).to_numpy(dtype=float)
        radius = radius[np.isfinite(radius)]
        size = 2.0 * float(np.median(radius)) * linear if radius.size else spot_diameter(adata, centroids)
        return _points_tuple(adata, section, centroids, size, meta, name)
    cell_ids = np.arange(1, len(section.rows) + 1)
    if _is_square_bins(gdf):
        obs = adata.obs.iloc[section.rows]
        if {"array_row", "array_col"} <= set(obs.columns):
            grid = obs[["array_row", "array_col"]].to_numpy()
        else:
            side = float(np.sqrt(np.median(gdf.geometry.iloc[:200].area))) * linear
            grid = bins_from_centres(centroids, side)
        raster = grid_of_bins(grid, centroids)
        if raster is not None:
            return _labels_tuple([raster.mask], cell_ids, raster.affine, adata, section, meta, name)
    ids = adata.obs[_instance_key(adata)].to_numpy()[section.rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        world = sd.transform(gdf, to_coordinate_system=section.cs).geometry
    polygons = world.reindex(ids)
    if polygons.isna().any():
        from ..core.errors import AnnotatabilityInputError

        raise AnnotatabilityInputError(f"{int(polygons.isna().sum())} table rows have no polygon in "
                                       f"{section.region!r} (instance key {_instance_key(adata)!r})")
    if section.offset.any():
        polygons = polygons.translate(xoff=section.offset[1], yoff=section.offset[0])
    polygons = polygons.reset_index(drop=True)
    raster = rasterize_polygons(polygons.to_numpy())
    meta = {**meta, "cell_polygons": polygons}
    return _labels_tuple(raster.pyramid(), cell_ids, raster.affine, adata, section, meta, name)


def _mask_polygons(sdata, adata, section: _Section, ids, region: str):
    """The cell boundaries of a mask's cells (Xenium's ``cell_boundaries``), computed when first exported.

    A zero-argument callable returning one world (x, y) polygon per shown row, or None when the
    store has no shapes element describing the same cells.  Transforming 500 000 polygons takes
    seconds, so opening does not pay for it; the GeoJSON writer calls it.
    """
    from ..core._sdata_table import sibling_shapes

    shapes, lookup = sibling_shapes(sdata, adata.obs.iloc[section.rows], ids, section.cs, region, circles=False)
    if shapes is None:
        return None
    cs, offset = section.cs, section.offset.copy()

    def polygons():
        import spatialdata as sd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            world = sd.transform(shapes, to_coordinate_system=cs).geometry
        out = world.reindex(lookup)
        if offset.any():
            out = out.translate(xoff=offset[1], yoff=offset[0])
        return out.reset_index(drop=True)

    return polygons


def _cells_layer(sdata, adata, section: _Section, info: dict, name: str) -> tuple:
    rows_or_none = None if np.array_equal(section.rows, np.arange(adata.n_obs)) else section.rows
    centroids = _centroids(sdata, adata, section, info)
    key = default_color_key(adata)
    meta = _cell_metadata(adata, section, rows_or_none, centroids, info["units"], key, section.region)
    region = section.region
    if region is not None and region in sdata.labels:
        element = sdata.labels[region]
        levels = [lv.data for lv in image_levels(element)]
        ids = adata.obs[_instance_key(adata)].to_numpy()[section.rows]
        bins = {"array_row", "array_col"} <= set(adata.obs.columns)  # a grid from spatialdata.rasterize_bins
        affine = napari_affine(element, section.cs, section.offset, half_pixel=not bins)
        polygons = _mask_polygons(sdata, adata, section, ids, region)
        if polygons is not None:
            meta = {**meta, "cell_polygons": polygons}
        return _labels_tuple(levels, ids, affine, adata, section, meta, name)
    if region is not None and region in sdata.shapes:
        return _shapes_layer(sdata, adata, section, meta, centroids, name)
    return _points_tuple(adata, section, centroids, spot_diameter(adata, centroids[:, ::-1]), meta, name)


# -- sections -------------------------------------------------------------------------------------
def _source_info(sdata, adata, coordinate_system: str | None) -> dict:
    info = dict(adata.uns.get("annotatability_source", {}) or {})
    regions, region_key, instance_key = _table_keys(adata)
    info.setdefault("region_key", region_key)
    info.setdefault("instance_key", instance_key)
    if not info.get("regions"):
        info["regions"] = [] if regions is None else ([regions] if isinstance(regions, str) else list(regions))
    systems = list(sdata.coordinate_systems)
    cs = coordinate_system or info.get("coordinate_system")
    if cs is None or cs not in systems:
        cs = "global" if "global" in systems else (systems[0] if systems else "global")
    info["cs"] = cs
    info["asked"] = coordinate_system is not None
    info.setdefault("units", "unknown")
    return info


def _system_of(sdata, region: str | None, info: dict) -> str:
    """The region's system: the one asked for, else the table's for it, else its own first."""
    cs = info["cs"] if info.get("asked") else (info.get("coordinate_systems") or {}).get(region, info["cs"])
    if region is not None and region in sdata and cs not in _systems(sdata[region]):
        cs = _systems(sdata[region])[0]
    return cs


def _sections(sdata, adata, info: dict) -> list[_Section]:
    regions = [r for r in info["regions"] if r is not None]
    key = info.get("region_key")
    if len(regions) <= 1 or key not in adata.obs:
        region = regions[0] if regions else None
        return [_Section(region, _system_of(sdata, region, info), np.arange(adata.n_obs))]
    values = adata.obs[key].astype(str).to_numpy()
    out = []
    for region in regions:
        rows = np.flatnonzero(values == str(region))
        if rows.size == 0:
            continue
        out.append(_Section(region, _system_of(sdata, region, info), rows))
    return out


def _images_in(sdata, cs: str) -> list[str]:
    """Names of the 2-D images in ``cs``, coarsest first (so the finest is drawn on top)."""
    names = [n for n, el in sdata.images.items() if cs in _systems(el)]

    def pixel_area(n):
        return abs(np.linalg.det(napari_affine(sdata.images[n], cs)[:2, :2]))

    return sorted(names, key=pixel_area, reverse=True)


def _lay_out_side_by_side(sdata, adata, sections: list[_Section], info: dict) -> None:
    """Coordinate systems would overlap in one world: shift each system's sections right of the last."""
    systems = list(dict.fromkeys(s.cs for s in sections))
    if len(systems) < 2:
        return
    boxes = {}
    for cs in systems:
        pts = [_centroids(sdata, adata, s, info) for s in sections if s.cs == cs]
        for n in _images_in(sdata, cs):
            h, w = image_levels(sdata.images[n])[0].shape[-2:]
            corners = np.array([[0, 0, 1], [h, 0, 1], [0, w, 1], [h, w, 1]], dtype=float) - [0.5, 0.5, 0]
            pts.append((napari_affine(sdata.images[n], cs) @ corners.T).T[:, :2])
        allp = np.concatenate(pts)
        boxes[cs] = (allp.min(axis=0), allp.max(axis=0))
    top = min(lo[0] for lo, _ in boxes.values())
    gap = 0.05 * max(hi[1] - lo[1] for lo, hi in boxes.values())
    cursor = boxes[systems[0]][0][1]
    offsets = {}
    for cs in systems:
        lo, hi = boxes[cs]
        offsets[cs] = np.array([top - lo[0], cursor - lo[1]])
        cursor += (hi[1] - lo[1]) + gap
    for s in sections:
        s.offset = offsets[s.cs]


def sdata_layer_data(sdata, adata, name: str, *, coordinate_system: str | None = None) -> list[tuple]:
    """napari LayerDataTuples for a SpatialData object and the table to score.

    Parameters
    ----------
    sdata
        The SpatialData object (images, labels, shapes are read lazily from it).
    adata
        The table to score (``core.platforms.table_from_sdata``): one row per cell, ``obsm['spatial']``
        its (x, y) centroid, ``uns['annotatability_source']`` the coordinate system, region and
        instance keys; a plain SpatialData table (``spatialdata_attrs``) works too.
    name
        Prefix of the layer names.
    coordinate_system
        The system all layers are drawn in (default: the table's, else ``global``).  A section whose
        element is not in it uses its own; sections in different systems are laid out side by side.

    Returns
    -------
    Image layers first (level 0 first, lazy), then one cell layer per section (Labels over a
    :class:`~._mask.CellMask`, or Points), all sharing ``adata``; ``metadata['rows']`` is the section's
    obs rows (None when one layer shows every row in order).
    """
    if adata.n_obs == 0:
        from ..core.errors import AnnotatabilityInputError

        raise AnnotatabilityInputError("the table has no cells (n_obs == 0)")
    info = _source_info(sdata, adata, coordinate_system)
    sections = _sections(sdata, adata, info)
    _lay_out_side_by_side(sdata, adata, sections, info)
    several = len(sections) > 1
    out: list[tuple] = []
    drawn: set[tuple[str, str]] = set()
    for s in sections:
        label = f"{name} {s.cs}: " if len({x.cs for x in sections}) > 1 else f"{name} "
        for img in _images_in(sdata, s.cs):
            if (img, s.cs) in drawn:
                continue
            drawn.add((img, s.cs))
            out.extend(_image_layers(sdata.images[img], img, s, info["units"], label))
    _hide_coarse_rgb(out)
    for s in sections:
        cell_name = f"{name} {s.region} cells" if several else f"{name} cells"
        out.append(_cells_layer(sdata, adata, s, info, cell_name))
    return out


def _hide_coarse_rgb(layers: list[tuple]) -> None:
    """RGB images of one place (hires, lowres, full): only the finest starts visible; other places stay."""
    rgb = [(data, kw) for data, kw, _ in layers if kw.get("rgb")]
    boxes = []
    for data, kw in rgb:
        h, w = (data[0] if isinstance(data, list) else data).shape[:2]
        corners = np.array([[-0.5, -0.5, 1], [h - 0.5, -0.5, 1], [-0.5, w - 0.5, 1], [h - 0.5, w - 0.5, 1]])
        world = (kw["affine"] @ corners.T).T[:, :2]
        boxes.append((world.min(0), world.max(0), abs(np.linalg.det(kw["affine"][:2, :2]))))
    for i, (_, kw) in enumerate(rgb):
        lo, hi, pixel = boxes[i]
        area = float(np.prod(hi - lo))
        for j, (lo2, hi2, pixel2) in enumerate(boxes):
            inter = np.clip(np.minimum(hi, hi2) - np.maximum(lo, lo2), 0, None).prod()
            if j != i and pixel2 < pixel and area > 0 and inter > 0.5 * area:
                kw["visible"] = False  # a finer image covers it
