"""A SpatialData table -> the AnnData :mod:`core` scores, with cell centroids (see :func:`table_from_sdata`).

Rows map to the elements they annotate through the table's region and instance keys
(``spatialdata.models.get_table_keys``).  Centroids come from ``spatialdata.get_centroids`` in one
coordinate system, except for segmentation masks (labels): a mask of a whole section has billions
of pixels, so a shapes element that describes the same cells (Xenium's ``cell_boundaries``,
indexed by the ``cell_id`` column of the table; Visium HD's squares, by ``location_id``; circles
indexed by the label ids) gives them when there is one; else the table's own positions
(``obsm["spatial"]``) mapped by an affine fitted, and checked, on a few chunks of the mask; else
the mask is read chunk by chunk, never whole.  Pixel ``(row, col)`` of a mask covers
``[col, col + 1) x [row, row + 1)`` as in spatialdata, so a cell's centroid is its pixels' mean index + 0.5.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import AnnotatabilityInputError

__all__ = ["table_from_sdata", "label_centroids", "label_means", "sibling_shapes", "axis_aligned_boxes"]

SOURCE_KEY = "annotatability_source"
_MICRON_NAMES = {"um", "µm", "micron", "microns", "micrometer", "micrometers"}


def _transform(element, cs):
    from spatialdata.transformations import get_transformation

    return get_transformation(element, cs)


def _systems(element) -> list[str]:
    from spatialdata.transformations import get_transformation

    return list(get_transformation(element, get_all=True))


def _matrix(element, cs) -> np.ndarray:
    """3x3 (x, y) affine matrix of the element's transformation to ``cs``."""
    return np.asarray(_transform(element, cs).to_affine_matrix(input_axes=("x", "y"), output_axes=("x", "y")), float)


def _kind(element) -> str:
    from spatialdata.models import get_model
    from spatialdata.models import Labels2DModel, Labels3DModel, PointsModel, ShapesModel

    model = get_model(element)
    if model in (Labels2DModel, Labels3DModel):
        return "labels"
    if model is ShapesModel:
        return "shapes"
    if model is PointsModel:
        return "points"
    return "image"


def _pick_system(sdata, regions: list[str], wanted: str | None) -> dict[str, str]:
    """region -> coordinate system: ``wanted``, else ``global``, else the finest shared one, else each its own."""
    have = {r: _systems(sdata[r]) for r in regions}
    if wanted is not None:
        lacking = [r for r in regions if wanted not in have[r]]
        if lacking:
            raise AnnotatabilityInputError(
                f"coordinate system {wanted!r} does not place {', '.join(lacking)}; "
                f"it has {', '.join(sorted(set().union(*have.values())))}"
            )
        return dict.fromkeys(regions, wanted)
    shared = [cs for cs in sdata.coordinate_systems if all(cs in have[r] for r in regions)]
    if "global" in shared:
        return dict.fromkeys(regions, "global")
    if shared:  # e.g. Visium HD: full-resolution pixels rather than the downscaled images' systems
        first = sdata[regions[0]]
        best = max(shared, key=lambda cs: abs(np.linalg.det(_matrix(first, cs)[:2, :2])))
        return dict.fromkeys(regions, best)
    return {r: ("global" if "global" in have[r] else have[r][0]) for r in regions}


def _units(sdata, cs: str) -> str:
    """"pixel" when an image or mask sits in ``cs`` at scale 1; "µm" when ``cs`` is named so; else "unknown"."""
    if cs.lower() in _MICRON_NAMES:
        return "µm"
    for group in (sdata.images, sdata.labels):
        for element in group.values():
            if cs in _systems(element):
                m = _matrix(element, cs)
                if np.allclose(np.abs(np.linalg.eigvals(m[:2, :2])), 1.0, atol=1e-6):
                    return "pixel"
    return "unknown"


def _is_value(column: pd.Series, value: str) -> np.ndarray:
    """``column == value`` as strings; a categorical compares its categories, not every row (fast)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        hit = np.flatnonzero(column.cat.categories.astype(str) == str(value))
        return np.isin(column.cat.codes.to_numpy(), hit)
    return (column.astype(str) == str(value)).to_numpy()


def _index_of(index: pd.Index, ids) -> np.ndarray:
    """Positions of ``ids`` in ``index`` (-1 where absent), matching ints and strings alike."""
    pos = index.get_indexer(pd.Index(ids))
    if (pos < 0).any() and index.dtype != pd.Index(ids).dtype:
        pos = index.astype(str).get_indexer(pd.Index(ids).astype(str))
    return pos


def _level0(element):
    """The full-resolution 2-D (y, x) dask array of a mask (DataArray or multiscale DataTree)."""
    import dask.array as da
    from xarray import DataTree

    arr = element
    if isinstance(element, DataTree):
        arr = next(iter(element["scale0"].ds.data_vars.values()))
    data = arr.transpose("y", "x").data
    return data if isinstance(data, da.Array) else da.from_array(data)


def _block_stats(block, y0: int, x0: int, interior: bool = False):
    """(ids, pixel counts, sum of x, sum of y) of the labels in one block; ``interior``: drop those on its edge."""
    block = np.asarray(block)
    h, w = block.shape
    flat = block.ravel()
    top = int(flat.max()) if flat.size else 0
    if top < max(4 * flat.size, 1 << 20):  # bincount straight on the ids: no sort
        cnt = np.bincount(flat, minlength=top + 1)
        sx = np.bincount(flat, weights=np.tile(np.arange(x0, x0 + w, dtype=np.float64), h), minlength=top + 1)
        sy = np.bincount(flat, weights=np.repeat(np.arange(y0, y0 + h, dtype=np.float64), w), minlength=top + 1)
        ids = np.flatnonzero(cnt)
        cnt, sx, sy = cnt[ids], sx[ids], sy[ids]
    else:
        ids, inv = np.unique(flat, return_inverse=True)
        cnt = np.bincount(inv)
        sx = np.bincount(inv, weights=np.tile(np.arange(x0, x0 + w, dtype=np.float64), h))
        sy = np.bincount(inv, weights=np.repeat(np.arange(y0, y0 + h, dtype=np.float64), w))
    if interior:
        edge = np.unique(np.concatenate([block[0], block[-1], block[:, 0], block[:, -1]]))
        keep = ~np.isin(ids, edge)
        ids, cnt, sx, sy = ids[keep], cnt[keep], sx[keep], sy[keep]
    return ids, cnt, sx, sy


def _to_frame(element, cs, ids, cnt, sx, sy) -> pd.DataFrame:
    keep = ids != 0
    # pixel (row, col) covers [col, col + 1) x [row, row + 1) in the element's intrinsic (x, y), as in
    # spatialdata (its get_centroids for labels agrees): its centre is index + 0.5
    xy = np.stack([sx[keep] / cnt[keep] + 0.5, sy[keep] / cnt[keep] + 0.5, np.ones(keep.sum())])
    out = (_matrix(element, cs) @ xy)[:2].T
    return pd.DataFrame(out, columns=["x", "y"], index=pd.Index(ids[keep]))


def label_means(data) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, pixel counts, mean column, mean row)`` of every label of a 2-D (dask) array, in pixel indices.

    One pass, chunk by chunk: memory is bounded by a chunk and the number of labels, never the whole
    array.  The background (0) is included; callers drop it.
    """
    import dask

    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int) for c in data.chunks]
    tasks = [dask.delayed(_block_stats)(blk, starts[0][i], starts[1][j])
             for (i, j), blk in np.ndenumerate(data.to_delayed())]
    parts = dask.compute(*tasks)
    ids = np.concatenate([q[0] for q in parts])
    uniq, inv = np.unique(ids, return_inverse=True)
    cnt, sx, sy = (np.bincount(inv, weights=np.concatenate([q[k] for q in parts])) for k in (1, 2, 3))
    return uniq, cnt, sx / cnt, sy / cnt


def label_centroids(element, cs: str) -> pd.DataFrame:
    """Centroids (x, y in ``cs``) of every label of a 2-D mask, read chunk by chunk; index = label id.

    Memory is bounded by a chunk and the number of labels, not by the mask; background (0) is left out.
    Costs one pass over the full-resolution mask: tens of seconds for a whole 40 000 px section.
    """
    ids, cnt, mx, my = label_means(_level0(element))
    return _to_frame(element, cs, ids, cnt, mx * cnt, my * cnt)


def _calibrated(element, cs: str, ids: np.ndarray, table_xy: np.ndarray) -> np.ndarray | None:
    """The table's own positions mapped into ``cs``, when a crop of the mask proves the mapping exact.

    Tables often carry their cells' centroids (``obsm["spatial"]``: Xenium in µm, Visium HD in
    pixels) in units that differ from the coordinate system.  The cells lying wholly inside a few
    chunks near the middle of the mask give an affine map from those positions to the mask's
    centroids; if it fits them within a tenth of a pixel, it places every row without reading the
    rest of the mask.  Else None (the caller reads the whole mask).
    """
    import dask

    data = _level0(element)
    grid = data.to_delayed()
    mid = np.array(grid.shape) // 2
    picks = {tuple(np.clip(mid + d, 0, np.array(grid.shape) - 1)) for d in ((0, 0), (0, -1), (-1, 0), (-1, -1))}
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int) for c in data.chunks]
    parts = dask.compute(*[dask.delayed(_block_stats)(grid[i, j], starts[0][i], starts[1][j], True)
                           for i, j in sorted(picks)])
    frame = _to_frame(element, cs, *[np.concatenate([q[k] for q in parts]) for k in range(4)])
    frame = frame[~frame.index.duplicated(keep=False)]
    pos = _index_of(pd.Index(ids), frame.index)
    ok = pos >= 0
    if ok.sum() < 6:
        return None
    src = np.c_[table_xy[pos[ok]], np.ones(ok.sum())]
    dst = frame.to_numpy()[ok]
    coef, *_ = np.linalg.lstsq(src, dst, rcond=None)
    pixel = np.sqrt(abs(np.linalg.det(_matrix(element, cs)[:2, :2])))
    if np.abs(src @ coef - dst).max() > 0.1 * pixel:
        return None
    return np.c_[table_xy, np.ones(len(table_xy))] @ coef


def axis_aligned_boxes(geoms) -> bool:
    """Whether every geometry is an axis-aligned rectangle (Visium HD bins), checked on all of them."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    if geoms.size == 0 or not (shapely.get_type_id(geoms) == 3).all():  # every geometry a Polygon
        return False
    if not (shapely.get_num_coordinates(geoms) == 5).all():
        return False
    area = shapely.area(geoms)
    bounds = shapely.bounds(geoms)
    return bool(np.allclose(area, (bounds[:, 2] - bounds[:, 0]) * (bounds[:, 3] - bounds[:, 1]), rtol=1e-6))


def _shape_centroids(sdata, element, cs) -> pd.DataFrame:
    import spatialdata as sd

    boxes = "radius" not in getattr(element, "columns", ()) and axis_aligned_boxes(
        getattr(element, "geometry", pd.Series([], dtype=object)))
    if boxes:  # the centre of each box, without shapely's general centroid (1 s per 10^6 shapes)
        import shapely

        b = shapely.bounds(np.asarray(element.geometry, dtype=object))
        xy1 = np.column_stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, np.ones(len(b))])
        xy = xy1 @ _matrix(element, cs).T
        return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}, index=element.index)
    cents = sd.get_centroids(element, coordinate_system=cs)
    cents = cents.compute() if hasattr(cents, "compute") else cents
    return cents[["x", "y"]]


def sibling_shapes(sdata, obs: pd.DataFrame, ids, cs: str, skip: str, *, circles: bool = True):
    """A shapes element placed in ``cs`` that describes the same cells as a mask: (element, the ids to look up).

    ``circles=False`` looks for boundaries only (Xenium's ``cell_boundaries``, not ``cell_circles``).
    """
    for name, shapes in sdata.shapes.items():
        if name == skip or cs not in _systems(shapes) or len(shapes) < len(ids):
            continue
        if not circles and "radius" in shapes.columns:
            continue
        if (_index_of(shapes.index, ids) >= 0).all():
            return shapes, ids
        kind = "iu" if shapes.index.dtype.kind in "iu" else "OUS"  # a column of the index's kind of ids
        columns = [c for c in obs.columns if (obs[c].dtype.kind if not isinstance(
            obs[c].dtype, pd.CategoricalDtype) else obs[c].cat.categories.dtype.kind) in kind]
        for c in columns:
            values = obs[c].to_numpy()
            if pd.Index(values).is_unique and (_index_of(shapes.index, values) >= 0).all():
                return shapes, values
    return None, None


def _region_xy(sdata, region: str, obs: pd.DataFrame, instance_key: str, cs: str, table_xy=None) -> np.ndarray:
    element = sdata[region]
    ids = obs[instance_key].to_numpy()
    kind = _kind(element)
    if kind == "labels":  # a shapes element of the same cells, else the table's positions proven on a crop,
        shapes, lookup = sibling_shapes(sdata, obs, ids, cs, region)  # else one pass over the mask
        if shapes is None and table_xy is not None and np.isfinite(table_xy).all():
            xy = _calibrated(element, cs, ids, table_xy)
            if xy is not None:
                return xy
        cents = _shape_centroids(sdata, shapes, cs) if shapes is not None else label_centroids(element, cs)
        if shapes is None:
            lookup = ids
    elif kind in ("shapes", "points"):
        cents, lookup = _shape_centroids(sdata, element, cs), ids
    else:
        raise AnnotatabilityInputError(f"the table annotates {region!r}, an image: it must annotate cells")
    pos = _index_of(cents.index, lookup)
    if (pos < 0).any():
        bad = pd.Index(ids)[pos < 0]
        raise AnnotatabilityInputError(
            f"{len(bad)} table rows have no cell in {region!r} ({instance_key} {', '.join(map(str, bad[:3]))}"
            f"{' ...' if len(bad) > 3 else ''})"
        )
    return cents.to_numpy(dtype=np.float64)[pos]


def _has_xy(adata) -> bool:
    xy = adata.obsm.get("spatial") if "spatial" in adata.obsm else None
    return xy is not None and np.ndim(xy) == 2 and np.shape(xy)[1] == 2 and np.issubdtype(np.asarray(xy).dtype,
                                                                                         np.number)


def _overlap(boxes: list[np.ndarray]) -> bool:
    """Whether any two (xmin, ymin, xmax, ymax) boxes overlap by more than a quarter of the smaller."""
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            w = min(a[2], b[2]) - max(a[0], b[0])
            h = min(a[3], b[3]) - max(a[1], b[1])
            area = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
            if w > 0 and h > 0 and w * h > 0.25 * max(area, 1e-12):
                return True
    return False


def _counts_from_transcripts(sdata):
    """(table, name) counting the transcript points per cell polygon, for stores without a table."""
    import anndata as ad
    import scipy.sparse as sp
    from spatialdata.models import TableModel

    shapes = next(((n, s) for n, s in sdata.shapes.items() if "cell" in n), None) or next(
        iter(sdata.shapes.items()), None)
    points = next(iter(sdata.points.items()), None)
    if shapes is None or points is None:
        raise AnnotatabilityInputError(
            "the store has no table, and no cell shapes with transcript points to count one from"
        )
    (shapes_name, cells), (points_name, pts) = shapes, points
    feature = pts.attrs.get("spatialdata_attrs", {}).get("feature_key")
    feature = feature or next((c for c in ("gene", "feature_name", "target") if c in pts.columns), None)
    if feature is None:
        raise AnnotatabilityInputError(f"points {points_name!r} name no gene (no feature_key, gene or feature_name)")
    if shapes_name in pts.columns:  # the store already assigns each transcript to a cell (bento)
        df = pts[[feature, shapes_name]].compute()
        cell = df[shapes_name].astype(str)
    else:  # assign by position
        import geopandas as gpd
        import spatialdata as sd

        cs = next(c for c in _systems(cells) if c in _systems(pts))
        df = sd.transform(pts, to_coordinate_system=cs)[["x", "y", feature]].compute()
        cells_cs = sd.transform(cells, to_coordinate_system=cs)
        hits = gpd.sjoin(gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["x"], df["y"])),
                         gpd.GeoDataFrame(geometry=cells_cs.geometry.values, index=cells.index.astype(str)),
                         predicate="within")
        df, cell = hits, pd.Series(hits["index_right"].astype(str).to_numpy(), index=hits.index)
    names = cells.index.astype(str)
    row = pd.Index(names).get_indexer(cell.to_numpy())
    genes = pd.Categorical(df[feature].astype(str))
    keep = row >= 0
    X = sp.csr_matrix((np.ones(keep.sum(), np.float32), (row[keep], genes.codes[keep])),
                      shape=(len(names), len(genes.categories)))
    X.sum_duplicates()
    obs = pd.DataFrame({"region": pd.Categorical([shapes_name] * len(names)), "cell_id": names.to_numpy()},
                       index=names)
    adata = ad.AnnData(X, obs=obs, var=pd.DataFrame(index=genes.categories.astype(str)))
    adata.uns["annotatability_counted_from"] = points_name
    return TableModel.parse(adata, region=shapes_name, region_key="region", instance_key="cell_id"), None


def table_from_sdata(sdata, *, table: str | None = None, coordinate_system: str | None = None):
    """The table of ``sdata`` to score (a copy), with each row's cell centroid in ``obsm["spatial"]``.

    Parameters
    ----------
    sdata
        A :class:`spatialdata.SpatialData`.
    table
        Which table; by default ``"table"`` or the only one.  A store without any table but
        with cell polygons and transcript points gets a table of transcript counts per cell.
    coordinate_system
        Where the centroids are taken; by default ``global`` when it places every annotated
        element, else the finest system they share.

    Returns
    -------
    AnnData with ``obsm["spatial"]`` = (x, y) float64 centroids, ``obs["section"]`` (categorical,
    the region) when the table annotates several overlapping regions or regions in different
    coordinate systems, and ``uns["annotatability_source"]`` = ``{"coordinate_system", "table",
    "region_key", "instance_key", "regions", "units"}`` (units "µm", "pixel" or "unknown").
    """
    from spatialdata.models import get_table_keys

    if not sdata.tables:
        adata, name = _counts_from_transcripts(sdata)
    else:
        name = table or ("table" if "table" in sdata.tables else None)
        if name is None and len(sdata.tables) == 1:
            name = next(iter(sdata.tables))
        if name not in sdata.tables:
            raise AnnotatabilityInputError(
                f"{'table ' + repr(table) + ' is not in the store' if table else 'the store has several tables'}; "
                f"choose one with --table: {', '.join(sdata.tables)}"
            )
        adata = sdata.tables[name].copy()
    try:
        region, region_key, instance_key = get_table_keys(adata)
    except (KeyError, ValueError, TypeError) as err:
        raise AnnotatabilityInputError(f"table {name!r} does not say which elements it annotates ({err})") from err
    regions = [region] if isinstance(region, str) else list(region)
    absent = [r for r in regions if r not in sdata]
    if absent:
        raise AnnotatabilityInputError(f"table {name!r} annotates {', '.join(map(repr, absent))}, not in the store")
    systems = _pick_system(sdata, regions, coordinate_system)

    xy = np.full((adata.n_obs, 2), np.nan)
    boxes = []
    for reg in regions:
        rows = _is_value(adata.obs[region_key], reg) if region_key in adata.obs else np.ones(adata.n_obs, bool)
        if rows.any():
            own = adata.obsm["spatial"][rows] if _has_xy(adata) else None
            xy[rows] = _region_xy(sdata, reg, adata.obs.loc[rows], instance_key, systems[reg], own)
            boxes.append(np.r_[xy[rows].min(0), xy[rows].max(0)])
    if not np.isfinite(xy).all():
        raise AnnotatabilityInputError(f"{int((~np.isfinite(xy)).any(1).sum())} table rows have no position")
    adata.obsm["spatial"] = xy
    per_region = len(set(systems.values())) > 1
    if len(regions) > 1 and (per_region or _overlap(boxes)):
        adata.obs["section"] = pd.Categorical(adata.obs[region_key].astype(str), categories=regions)
    cs = systems[regions[0]]
    source = {"coordinate_system": cs, "table": name or "transcript_counts", "region_key": region_key,
              "instance_key": instance_key, "regions": regions, "units": _units(sdata, cs)}
    if per_region:
        source["coordinate_systems"] = dict(systems)
    adata.uns[SOURCE_KEY] = source
    return adata
