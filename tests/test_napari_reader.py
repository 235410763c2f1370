"""Reader, sample data and manifest: spatial data lands on the tissue where it belongs."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")

from conftest import PACKAGE_DATA  # noqa: E402

from napari_annotatability._napari._reader import napari_get_reader  # noqa: E402
from napari_annotatability._napari._spatial import layer_data  # noqa: E402

VISIUM = PACKAGE_DATA / "visium_tiny"


def test_manifest_is_valid():
    from npe2 import PluginManifest

    mf = PluginManifest.from_distribution("napari-annotatability")
    assert mf.name == "napari-annotatability"
    assert {s.key for s in mf.contributions.sample_data} == {"synthetic", "visium_tiny"}
    assert mf.contributions.readers[0].accepts_directories


@pytest.mark.slow
def test_visium_spots_align_with_the_tissue_image():
    reader = napari_get_reader(str(VISIUM))
    assert callable(reader)
    (img, img_kw, img_kind), (pts, pts_kw, pts_kind) = reader(str(VISIUM))
    assert (img_kind, pts_kind) == ("image", "points")
    adata = pts_kw["metadata"]["adata"]
    factors = json.loads((VISIUM / "spatial" / "scalefactors_json.json").read_text())
    # the hires image of this test data is an all-black placeholder: the lowres one is used
    assert "lowres" in img_kw["name"]
    s = factors["tissue_lowres_scalef"]
    np.testing.assert_allclose(img_kw["scale"], (1 / s, 1 / s))
    # a spot's position is its obsm['spatial'] pixel as (row, col)
    np.testing.assert_allclose(pts, adata.obsm["spatial"][:, ::-1])
    assert pts_kw["size"] == pytest.approx(factors["spot_diameter_fullres"])
    # ... and falls on tissue in the image: stained (pink/purple, saturated) where the slide
    # background is grey
    rows, cols = np.round(pts * s).astype(int).T
    assert ((rows >= 3) & (rows < img.shape[0] - 3) & (cols >= 3) & (cols < img.shape[1] - 3)).all()
    sat = img[..., :3].max(-1).astype(float) - img[..., :3].min(-1)
    around = np.array([sat[r - 3 : r + 4, c - 3 : c + 4].mean() for r, c in zip(rows, cols)])
    background = np.median(np.concatenate([sat[:40].ravel(), sat[-40:].ravel()]))
    in_tissue = adata.obs["in_tissue"].to_numpy().astype(bool)
    assert in_tissue.all() and (around > background + 8).mean() > 0.95
    # the criterion can fail: the same spots moved into the slide margin are not on tissue
    margin = np.array([sat[10 - 3 : 10 + 4, c - 3 : c + 4].mean() for c in cols])
    assert (margin > background + 8).mean() < 0.05


@pytest.mark.slow
def test_visium_layers_in_a_viewer_share_world_coordinates(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open(str(VISIUM), plugin="napari-annotatability")
    image, points = layers
    adata = points.metadata["adata"]
    s = 1 / image.scale[0]
    # world position of spot 0 == its full-resolution pixel; the image pixel under it maps there too
    r, c = adata.obsm["spatial"][0, ::-1]
    np.testing.assert_allclose(points.data_to_world(points.data[0]), (r, c))
    np.testing.assert_allclose(image.data_to_world((r * s, c * s)), (r, c), rtol=1e-9)
    assert set(adata.obs.columns) <= set(points.features.columns)


def test_h5ad_with_xy_columns_and_no_image(tmp_path):
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(np.arange(10), np.arange(8)), -1).reshape(-1, 2) * 25.0
    obs = pd.DataFrame({"x": grid[:, 0], "y": grid[:, 1],
                        "cell_type": pd.Categorical(rng.choice(["a", "b"], len(grid)))},
                       index=[f"c{i}" for i in range(len(grid))])
    p = tmp_path / "cells.h5ad"
    ad.AnnData(rng.random((len(grid), 5)).astype(np.float32), obs=obs).write_h5ad(p)
    layers = napari_get_reader(str(p))(str(p))
    assert len(layers) == 1
    pts, kw, kind = layers[0]
    assert kind == "points" and kw["size"] == pytest.approx(25.0)  # nearest-neighbour spacing
    np.testing.assert_allclose(pts, grid[:, ::-1])
    assert kw["face_color"].shape == (len(grid), 4)


def test_reader_declines_what_it_cannot_read(tmp_path):
    plain = tmp_path / "plain.h5ad"
    ad.AnnData(np.zeros((3, 2), dtype=np.float32)).write_h5ad(plain)
    assert napari_get_reader(str(plain)) is None  # no coordinates: not ours
    assert napari_get_reader(str(tmp_path / "image.tif")) is None
    assert napari_get_reader(str(tmp_path)) is None  # a folder that is not Space Ranger output
    assert napari_get_reader([str(plain), str(plain)]) is None


def test_broken_file_gets_a_clear_notification(tmp_path, monkeypatch):
    bad = tmp_path / "broken.h5ad"
    bad.write_bytes(b"not hdf5 at all" * 100)
    messages = []
    monkeypatch.setattr("napari.utils.notifications.show_error", messages.append)
    reader = napari_get_reader(str(bad))
    assert callable(reader)  # claimed by extension ...
    assert reader(str(bad)) == [(None,)]  # ... but nothing is added
    assert len(messages) == 1 and "broken.h5ad" in messages[0] and "cannot read" in messages[0]


def test_synthetic_sample_has_ground_truth_and_aligned_image():
    from napari_annotatability._napari._sample import synthetic_tissue

    (img, img_kw, _), (pts, kw, _) = synthetic_tissue()
    adata = kw["metadata"]["adata"]
    obs = adata.obs
    assert obs["mislabelled"].sum() > 50 and obs["transition"].sum() > 100
    assert (obs.loc[obs["mislabelled"], "label"] != obs.loc[obs["mislabelled"], "region"]).all()
    # every spot lies on tissue (pink/purple, not the pale background)
    s = 1 / img_kw["scale"][0]
    rows, cols = np.round(pts * s).astype(int).T
    assert (img[rows, cols].mean(-1) < 240).mean() > 0.97


def test_visium_tiny_sample_is_ready_to_train():
    from napari_annotatability import core
    from napari_annotatability._napari._sample import visium_tiny

    layers = visium_tiny()
    adata = layers[-1][1]["metadata"]["adata"]
    assert adata.obs["cluster"].nunique() == 4 and not core.looks_like_counts(adata.X)
    core.training_dynamics(adata, "cluster", epochs=3)


def test_layer_data_rejects_bad_spatial_input():
    from napari_annotatability import core

    a = ad.AnnData(np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(core.AnnotatabilityInputError, match="no spatial coordinates"):
        layer_data(a, "x")
    a.obsm["spatial"] = np.array([[0, 0], [1, np.nan], [2, 2]], dtype=float)
    with pytest.raises(core.AnnotatabilityInputError, match="NaN"):
        layer_data(a, "x")
    a.obsm["spatial"] = np.array([[0, 0], [1, 1], [2, 2]], dtype=float)
    a.uns["spatial"] = {"lib": {"images": {"hires": np.random.default_rng(0).random((5, 5, 3))}, "scalefactors": {}}}
    with pytest.raises(core.AnnotatabilityInputError, match="tissue_hires_scalef"):
        layer_data(a, "x")


@pytest.fixture
def spatialdata_store(tmp_path):
    """The synthetic section as a SpatialData store, as spatialdata-io writes Visium:
    circles in full-resolution pixels, a table annotating them, the image with a Scale transform."""
    sd = pytest.importorskip("spatialdata")
    import warnings

    from spatialdata.models import Image2DModel, ShapesModel, TableModel
    from spatialdata.transformations import Scale

    from napari_annotatability.core import make_synthetic_tissue

    adata = make_synthetic_tissue(n_spots=400, seed=1)
    lib = adata.uns.pop("spatial")["synthetic"]
    img = lib["images"]["hires"]
    s = lib["scalefactors"]["tissue_hires_scalef"]
    radius = lib["scalefactors"]["spot_diameter_fullres"] / 2
    xy = adata.obsm["spatial"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        circles = ShapesModel.parse(xy, geometry=0, radius=np.full(len(xy), radius),
                                    index=np.arange(len(xy)))
        table = adata.copy()
        table.obs["spot_id"] = np.arange(len(xy))
        table.obs["region"] = pd.Categorical(["spots"] * len(xy))
        table = TableModel.parse(table, region="spots", region_key="region", instance_key="spot_id")
        image = Image2DModel.parse(img.transpose(2, 0, 1), dims=("c", "y", "x"),
                                   transformations={"global": Scale([1 / s, 1 / s], axes=("y", "x"))})
        sdata = sd.SpatialData(images={"he": image}, shapes={"spots": circles}, tables={"table": table})
        path = tmp_path / "section.zarr"
        sdata.write(path)
    return path, adata, img, s, radius


def test_spatialdata_store_reads_like_its_anndata(spatialdata_store):
    path, adata, img, s, radius = spatialdata_store
    reader = napari_get_reader(str(path))
    assert callable(reader)
    (image, img_kw, _), (pts, kw, _) = reader(str(path))
    np.testing.assert_allclose(pts, adata.obsm["spatial"][:, ::-1], rtol=1e-9)
    np.testing.assert_allclose(img_kw["scale"], (1 / s, 1 / s))
    np.testing.assert_array_equal(image, img)
    assert kw["size"] == pytest.approx(2 * radius)
    read = kw["metadata"]["adata"]
    assert list(read.obs["label"]) == list(adata.obs["label"])
    np.testing.assert_array_equal(read.X, adata.X)


def test_spatialdata_store_without_table_is_a_clear_error(tmp_path, monkeypatch):
    sd = pytest.importorskip("spatialdata")
    import warnings

    from spatialdata.models import ShapesModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        circles = ShapesModel.parse(np.zeros((2, 2)), geometry=0, radius=np.ones(2))
        sd.SpatialData(shapes={"spots": circles}).write(tmp_path / "empty.zarr")
    assert napari_get_reader(str(tmp_path / "empty.zarr")) is None  # no tables/: not a table store
