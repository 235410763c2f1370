"""SpatialData -> napari layers: lazy pyramids, one world for image, mask and table, cells as labels."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")
sd = pytest.importorskip("spatialdata")

import dask.array as da  # noqa: E402
import geopandas as gpd  # noqa: E402
import shapely  # noqa: E402
from napari.layers import Layer  # noqa: E402
from spatialdata.models import Image2DModel, Labels2DModel, ShapesModel, TableModel  # noqa: E402
from spatialdata.transformations import Affine, Scale, Sequence, Translation  # noqa: E402

from napari_annotatability._napari._cell_raster import rasterize_polygons  # noqa: E402
from napari_annotatability._napari._sdata_layers import sdata_layer_data  # noqa: E402
from napari_annotatability.core.platforms import table_from_sdata  # noqa: E402

#: where the known cell sits in the mask (level 0 pixels) and what the image holds there
CELL_ID, ROWS, COLS, BRIGHT = 7, slice(40, 46), slice(60, 66), 999


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _section(transform, *, shape=(120, 160), scale_factors=(2, 2), region="cells", n_other=5, seed=0):
    """An image pyramid and a mask pyramid sharing ``transform``, a known cell, and a table."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, dtype=np.int32)
    mask[ROWS, COLS] = CELL_ID
    others = np.arange(20, 20 + n_other)
    for k, cid in enumerate(others):
        mask[5 + 12 * k: 11 + 12 * k, 5:11] = cid
    img = rng.integers(0, 100, size=(2,) + shape).astype(np.uint16)
    img[0][ROWS, COLS] = BRIGHT
    ids = np.r_[others, CELL_ID]
    obs = pd.DataFrame({"cell_id": ids, "region": pd.Categorical([region] * len(ids)),
                        "label": pd.Categorical(np.where(ids == CELL_ID, "known", "other"))},
                       index=[f"{region}_{i}" for i in ids])
    import anndata as ad

    table = ad.AnnData(rng.random((len(ids), 4)).astype(np.float32), obs=obs)
    with _quiet():
        image = Image2DModel.parse(img, dims=("c", "y", "x"), c_coords=["DAPI", "CD45"],
                                   scale_factors=list(scale_factors), transformations={"global": transform})
        labels = Labels2DModel.parse(mask, dims=("y", "x"), scale_factors=list(scale_factors),
                                     transformations={"global": transform})
        table = TableModel.parse(table, region=region, region_key="region", instance_key="cell_id")
    return image, labels, table


def _layers(sdata, adata=None, name="s"):
    with _quiet():
        adata = table_from_sdata(sdata) if adata is None else adata
        tuples = sdata_layer_data(sdata, adata, name)
        return [Layer.create(d, kw, kind) for d, kw, kind in tuples], tuples


def _value_at(layer, world_yx):
    """Level-0 value of ``layer`` at a world (y, x): the napari data index under it."""
    idx = np.round(np.asarray(layer.world_to_data(world_yx), dtype=float)).astype(int)
    data = layer.data[0] if layer.multiscale else layer.data
    return data[tuple(idx)].compute() if hasattr(data, "compute") else data[tuple(idx)], idx


def _world_of_pixel(matrix_xy, row, col):
    """World (y, x) of the centre of level-0 pixel (row, col) (intrinsic centre = index + 0.5)."""
    x, y, _ = np.asarray(matrix_xy) @ [col + 0.5, row + 0.5, 1.0]
    return np.array([y, x])


@pytest.mark.parametrize("transform", [
    Sequence([Scale([0.5, 0.5], axes=("y", "x")), Translation([120.0, 80.0], axes=("y", "x"))]),
    Affine(np.array([[0.6 * np.cos(0.5), -0.6 * np.sin(0.5), 300.0],
                     [0.6 * np.sin(0.5), 0.6 * np.cos(0.5), -40.0], [0, 0, 1]]),
           input_axes=("x", "y"), output_axes=("x", "y")),
], ids=["scale+translate", "rotation"])
def test_a_known_cell_lines_up_in_image_mask_and_table(transform):
    image, labels, table = _section(transform)
    sdata = sd.SpatialData(images={"img": image}, labels={"cells": labels}, tables={"table": table})
    layers, _ = _layers(sdata)
    dapi, cd45, cells = layers
    assert [type(x).__name__ for x in layers] == ["Image", "Image", "Labels"]
    m = transform.to_affine_matrix(input_axes=("x", "y"), output_axes=("x", "y"))
    # every pixel of the planted cell: the world position of its centre lands on it in both layers
    for r in range(ROWS.start, ROWS.stop):
        for c in range(COLS.start, COLS.stop):
            world = _world_of_pixel(m, r, c)
            value, idx = _value_at(dapi, world)
            assert value == BRIGHT and tuple(idx) == (r, c)
            mask_idx = np.round(cells.world_to_data(world)).astype(int)
            assert tuple(mask_idx) == (r, c)
            assert cells.metadata["mask"].row_at(mask_idx) == table.n_obs - 1  # the known cell's row
    # the table's centroid of the cell is its centre in the world, within a pixel
    centre = _world_of_pixel(m, (ROWS.start + ROWS.stop - 1) / 2, (COLS.start + COLS.stop - 1) / 2)
    pixel = np.sqrt(abs(np.linalg.det(np.asarray(m)[:2, :2])))
    assert np.linalg.norm(cells.metadata["centroids"][-1] - centre) < pixel
    assert cells.metadata["adata"].obs["label"].iloc[-1] == "known"
    assert cd45.metadata["channel"] == "CD45" and not cd45.rgb


def test_a_pyramid_stays_lazy_and_only_its_smallest_level_is_read():
    image, labels, table = _section(Scale([2.0, 2.0], axes=("y", "x")), shape=(256, 256), scale_factors=(2, 2, 2))

    def boom(block):
        raise AssertionError("a full-resolution level was computed")

    for tree in (image, labels):  # poison every level but the smallest: reading it fails the test
        for key in list(tree.children)[:-1]:
            var = next(iter(tree[key].ds.data_vars))
            arr = tree[key][var]
            tree[f"{key}/{var}"] = arr.copy(data=da.map_blocks(boom, arr.data, dtype=arr.dtype))
    sdata = sd.SpatialData(images={"img": image}, labels={"cells": labels}, tables={"table": table})
    adata = table.copy()
    adata.obsm["spatial"] = np.zeros((adata.n_obs, 2))  # centroids given: the mask is not read for them
    tuples = sdata_layer_data(sdata, adata, "lazy")
    for data, kw, _ in tuples:
        assert kw["multiscale"] and len(data) == 4
        assert all(isinstance(level, da.Array) for level in data)
        assert [lv.shape[-1] for lv in data] == [256, 128, 64, 32]
    assert tuples[0][1]["contrast_limits"][1] > 0  # from the smallest level


def test_polygons_rasterise_to_their_cells():
    from shapely.geometry import Polygon, box

    geoms = [box(0, 0, 10, 10), box(20, 0, 30, 6),
             Polygon([(0, 20), (10, 20), (10, 30), (0, 30)], [[(3, 23), (7, 23), (7, 27), (3, 27)]])]
    raster = rasterize_polygons(geoms, pixel_size=1.0)
    assert np.bincount(raster.mask.ravel(), minlength=4)[1:].tolist() == [100, 60, 84]  # the hole is empty
    # in a store: string ids, a scale to the world, a table in another order than the shapes
    ids = ["c-a", "c-b", "c-c"]
    with _quiet():
        shapes = ShapesModel.parse(gpd.GeoDataFrame({"geometry": geoms}, index=ids, geometry="geometry"),
                                   transformations={"global": Scale([2.0, 2.0], axes=("x", "y"))})
        import anndata as ad

        obs = pd.DataFrame({"cell": ids[::-1], "region": pd.Categorical(["bounds"] * 3)}, index=["r0", "r1", "r2"])
        table = TableModel.parse(ad.AnnData(np.ones((3, 2), np.float32), obs=obs), region="bounds",
                                 region_key="region", instance_key="cell")
    sdata = sd.SpatialData(shapes={"bounds": shapes}, tables={"table": table})
    (cells,), _ = _layers(sdata)
    assert type(cells).__name__ == "Labels"
    polys = cells.metadata["cell_polygons"]
    assert len(polys) == 3
    for row, cid in enumerate(ids[::-1]):
        inside = geoms[ids.index(cid)].representative_point()
        world = np.array([inside.y, inside.x]) * 2.0
        assert polys.iloc[row].contains(shapely.geometry.Point(world[::-1]))
        idx = np.round(cells.world_to_data(world)).astype(int)
        assert cells.metadata["mask"].row_at(idx) == row
    # the hole of c-c is no cell
    assert cells.metadata["mask"].row_at(np.round(cells.world_to_data((50.0, 10.0))).astype(int)) is None


@pytest.mark.parametrize("with_array_index", [True, False])
def test_square_bins_become_a_labels_grid(with_array_index):
    import anndata as ad

    rows, cols = np.divmod(np.arange(30), 6)
    keep = np.ones(30, bool)
    keep[[3, 17]] = False  # bins without tissue are absent
    rows, cols = rows[keep], cols[keep]
    side = 16.0
    centres = np.column_stack([100 + (cols + 0.5) * side, 50 + (rows + 0.5) * side])  # (x, y) pixels
    with _quiet():
        circles = ShapesModel.parse(centres, geometry=0, radius=np.full(len(centres), side / 2),
                                    index=np.arange(len(centres)))
        squares = ShapesModel.parse(gpd.GeoDataFrame(geometry=circles.buffer(side / 2, cap_style=3)),
                                    transformations={"global": Scale([0.25, 0.25], axes=("x", "y"))})
        obs = pd.DataFrame({"bin": np.arange(len(centres))[::-1], "region": pd.Categorical(["bins"] * len(centres))},
                           index=[f"b{i}" for i in range(len(centres))])
        if with_array_index:
            obs["array_row"], obs["array_col"] = rows[::-1], cols[::-1]
        table = TableModel.parse(ad.AnnData(np.ones((len(obs), 2), np.float32), obs=obs), region="bins",
                                 region_key="region", instance_key="bin")
    sdata = sd.SpatialData(shapes={"bins": squares}, tables={"table": table})
    (grid,), _ = _layers(sdata)
    assert type(grid).__name__ == "Labels" and grid.data.shape == (5, 6)
    mask = grid.metadata["mask"]
    for row, b in enumerate(table.obs["bin"]):
        world = centres[b, ::-1] * 0.25
        idx = np.round(grid.world_to_data(world)).astype(int)
        assert tuple(idx) == (rows[b], cols[b]) and mask.row_at(idx) == row
    assert mask.row_at((3 // 6, 3 % 6)) is None  # an absent bin is background


def test_two_sections_share_one_table_side_by_side():
    img1, lab1, _ = _section(Scale([1.0, 1.0], axes=("y", "x")), region="s1")
    img2, lab2, _ = _section(Scale([1.0, 1.0], axes=("y", "x")), region="s2", seed=1)
    for el in (img2, lab2):  # the second section lives in its own coordinate system
        sd.transformations.set_transformation(el, {"section2": Scale([1.0, 1.0], axes=("y", "x"))},
                                              set_all=True)
    import anndata as ad

    t1, t2 = _section(Scale([1.0, 1.0], axes=("y", "x")), region="s1")[2], _section(
        Scale([1.0, 1.0], axes=("y", "x")), region="s2")[2]
    both = ad.concat([t1, t2])
    both.obs["region"] = pd.Categorical(both.obs["region"].astype(str))
    with _quiet():
        both = TableModel.parse(both, region=["s1", "s2"], region_key="region", instance_key="cell_id")
    sdata = sd.SpatialData(images={"img1": img1, "img2": img2}, labels={"s1": lab1, "s2": lab2},
                           tables={"table": both})
    layers, _ = _layers(sdata)
    cells = [layer for layer in layers if type(layer).__name__ == "Labels"]
    images = [layer for layer in layers if type(layer).__name__ == "Image"]
    assert len(cells) == 2 and len(images) == 4  # two channels per section
    a, b = cells
    assert a.metadata["adata"] is b.metadata["adata"]
    rows_a, rows_b = a.metadata["rows"], b.metadata["rows"]
    assert not set(rows_a) & set(rows_b) and sorted([*rows_a, *rows_b]) == list(range(both.n_obs))
    # the known cell of each section lies under its own centroid, in its own image, not on the other
    for layer in cells:
        known = int(np.flatnonzero(layer.metadata["adata"].obs["cell_id"].to_numpy()[layer.metadata["rows"]]
                                   == CELL_ID)[0])
        world = layer.metadata["centroids"][known]
        assert layer.metadata["mask"].row_at(np.round(layer.world_to_data(world)).astype(int)) == known
        own = next(i for i in images if i.metadata["coordinate_system"] == layer.metadata["coordinate_system"]
                   and i.metadata["channel"] == "DAPI")
        assert _value_at(own, world)[0] == BRIGHT
    assert b.metadata["centroids"][:, 1].min() > a.metadata["centroids"][:, 1].max()  # side by side


def test_circles_are_points_sized_in_world_units():
    import anndata as ad

    xy = np.array([[10.0, 20.0], [40.0, 20.0], [70.0, 50.0]])
    with _quiet():
        circles = ShapesModel.parse(xy, geometry=0, radius=np.full(3, 5.0), index=np.arange(3),
                                    transformations={"global": Scale([0.5, 0.5], axes=("x", "y"))})
        obs = pd.DataFrame({"spot": [2, 0, 1], "region": pd.Categorical(["spots"] * 3)}, index=list("abc"))
        table = TableModel.parse(ad.AnnData(np.ones((3, 2), np.float32), obs=obs), region="spots",
                                 region_key="region", instance_key="spot")
    (points,), _ = _layers(sd.SpatialData(shapes={"spots": circles}, tables={"table": table}))
    assert type(points).__name__ == "Points"
    np.testing.assert_allclose(points.data, xy[[2, 0, 1], ::-1] * 0.5)
    np.testing.assert_allclose(points.size, 5.0)  # diameter 10 px at 0.5 world units per px


@pytest.fixture
def small_sample(tmp_path, monkeypatch):
    """The synthetic-cells sample, small, cached under a temporary XDG cache."""
    import functools

    from napari_annotatability.core import synthetic

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(synthetic, "make_synthetic_cells_sdata",
                        functools.partial(synthetic.make_synthetic_cells_sdata, n_cells=300, image_size=400))
    return tmp_path / "cache"


def test_sample_is_cached_once_and_opens_as_image_and_labels(small_sample, make_napari_viewer):
    from napari_annotatability._napari._sample import synthetic_cells_store

    viewer = make_napari_viewer()
    with _quiet():
        layers = viewer.open_sample("napari-annotatability", "synthetic_cells")
    kinds = [type(layer).__name__ for layer in layers]
    assert kinds == ["Image", "Image", "Labels"]
    store = synthetic_cells_store()
    assert store.parent.parent.parent == small_sample and [p.name for p in store.parent.iterdir()] == [store.name]
    cells = layers[-1]
    adata = cells.metadata["adata"]
    assert adata.obs["mislabelled"].sum() > 0 and cells.metadata["color_by"] == "label"
    # every cell's centroid lies on its own cell in the mask
    mask = cells.metadata["mask"]
    idx = np.round([cells.world_to_data(w) for w in cells.metadata["centroids"][:50]]).astype(int)
    assert [mask.row_at(i) for i in idx] == list(range(50))
    assert cells.metadata["source_path"] == str(store)


def test_a_xenium_mask_exports_its_real_cell_boundaries_as_geojson(tmp_path):
    """Xenium's cell_boundaries describe the mask's cells: GeoJSON writes those polygons, not points."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import platform_layouts as pl

    from napari_annotatability._napari._writer import write_geojson
    from napari_annotatability.core.platforms import read_sdata

    path, info = pl.write_xenium(tmp_path / "xenium")
    sdata = read_sdata(path)
    adata = table_from_sdata(sdata)
    data, kwargs, kind = next(t for t in _layers(sdata, adata)[1] if t[2] == "labels")
    polygons = kwargs["metadata"]["cell_polygons"]
    assert callable(polygons)  # computed when exported, not when opened
    out = tmp_path / "cells.geojson"
    assert write_geojson(str(out), data, {**kwargs, "metadata": {**kwargs["metadata"], "source_path": str(path)}})
    features = json.loads(out.read_text())["features"]
    assert len(features) == adata.n_obs and all(f["geometry"]["type"] == "Polygon" for f in features)
    # each polygon surrounds its cell's planted centre (x, y in the global system)
    for f, cell_id in zip(features[:5], adata.obs["cell_id"].to_numpy()[:5]):
        centre = info["centre_px"][list(info["cell_id"]).index(cell_id)]
        assert shapely.geometry.shape(f["geometry"]).buffer(1e-6).contains(shapely.Point(*centre))
