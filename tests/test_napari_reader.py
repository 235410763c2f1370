"""Reader, sample data and manifest: spatial data lands on the tissue where it belongs."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert {s.key for s in mf.contributions.sample_data} == {"synthetic", "visium_tiny", "synthetic_cells"}
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
    (tmp_path / "matrix.h5").write_bytes(b"")  # an .h5 that is not inside a Space Ranger folder
    assert napari_get_reader(str(tmp_path / "matrix.h5")) is None
    assert napari_get_reader([str(plain), str(plain)]) is None


def test_an_unknown_folder_is_told_what_is_accepted(tmp_path, monkeypatch):
    from napari_annotatability.core.platforms import ACCEPTED

    folder = tmp_path / "my_run"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an instrument's output")
    messages = []
    monkeypatch.setattr("napari.utils.notifications.show_error", messages.append)
    reader = napari_get_reader(str(folder))
    assert callable(reader)  # claimed, so that the user learns what would work
    assert reader(str(folder)) == [(None,)]
    assert len(messages) == 1 and "my_run" in messages[0] and ACCEPTED in messages[0]
    assert "Xenium" in messages[0] and "Traceback" not in messages[0]
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]  # nothing written next to it


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
    (image, img_kw, _), (pts, kw, kind) = reader(str(path))
    assert kind == "points"  # circles stay spots
    np.testing.assert_allclose(pts, adata.obsm["spatial"][:, ::-1], rtol=1e-9)
    # the image is the store's own array, lazily, placed by its Scale transform (and the half-pixel
    # shift between SpatialData's pixel corners and napari's pixel centres)
    assert img_kw["rgb"] and hasattr(image, "dask")
    np.testing.assert_array_equal(np.asarray(image), img)
    np.testing.assert_allclose(np.diag(img_kw["affine"])[:2], (1 / s, 1 / s))
    np.testing.assert_allclose(img_kw["affine"][:2, 2], (0.5 / s, 0.5 / s))
    assert kw["size"] == pytest.approx(2 * radius)
    read = kw["metadata"]["adata"]
    assert list(read.obs["label"]) == list(adata.obs["label"])
    np.testing.assert_array_equal(read.X, adata.X)
    assert kw["metadata"]["source_path"] == str(path)


def test_spatialdata_store_without_table_is_a_clear_error(tmp_path, monkeypatch):
    sd = pytest.importorskip("spatialdata")
    import warnings

    from spatialdata.models import ShapesModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        circles = ShapesModel.parse(np.zeros((2, 2)), geometry=0, radius=np.ones(2))
        sd.SpatialData(shapes={"spots": circles}).write(tmp_path / "empty.zarr")
    messages = []
    monkeypatch.setattr("napari.utils.notifications.show_error", messages.append)
    assert napari_get_reader(str(tmp_path / "empty.zarr"))(str(tmp_path / "empty.zarr")) == [(None,)]
    assert len(messages) == 1 and "empty.zarr" in messages[0] and "table" in messages[0]


def _cell_under_its_centroid(cells) -> np.ndarray:
    """For each row of a cells layer: is the mask cell under its world centroid that row's cell?"""
    mask = cells[1]["metadata"]["mask"]
    from napari.layers import Labels

    layer = Labels(cells[0], **{k: v for k, v in cells[1].items() if k != "metadata"})
    idx = [np.round(layer.world_to_data(w)).astype(int) for w in cells[1]["metadata"]["centroids"]]
    return np.array([mask.row_at(i) == row for row, i in enumerate(idx)])


@pytest.mark.parametrize("layout", ["write_xenium", "write_merscope", "write_cosmx", "write_visium_hd"])
def test_every_platform_layout_opens_as_images_and_cells(layout, tmp_path):
    import platform_layouts

    path, info = getattr(platform_layouts, layout)(tmp_path / layout)
    before = sorted(p.relative_to(path) for p in path.rglob("*"))
    reader = napari_get_reader(str(path))
    assert callable(reader)
    layers = reader(str(path))
    kinds = [kind for *_, kind in layers]
    assert "image" in kinds and kinds[-1] == "labels", kinds
    for data, kw, kind in layers:
        levels = data if isinstance(data, list) else [data]
        if kind == "image":
            assert all(hasattr(level, "dask") for level in levels)  # lazy, never loaded whole
        assert kw["metadata"]["source_path"] == str(path)
    cells = [t for t in layers if t[2] == "labels"]
    adatas = {id(t[1]["metadata"]["adata"]) for t in cells}
    assert len(adatas) == 1  # several sections (CosMx FOVs) share one table
    for t in cells:
        assert _cell_under_its_centroid(t).mean() > 0.9
    if layout == "write_xenium":  # the planted centres: mask id and bright image square under each
        (cells,) = cells
        image = next(t for t in layers if t[2] == "image")
        from napari.layers import Image, Labels

        img_layer = Image(image[0], **{k: v for k, v in image[1].items() if k != "metadata"})
        lab_layer = Labels(cells[0], **{k: v for k, v in cells[1].items() if k != "metadata"})
        mask = cells[1]["metadata"]["mask"]
        adata = cells[1]["metadata"]["adata"]
        for (x, y), cid in zip(info["centre_px"], info["cell_id"]):
            row = mask.row_at(np.round(lab_layer.world_to_data((y, x))).astype(int))
            assert adata.obs_names[row] == cid or adata.obs["cell_id"].iloc[row] == cid
            r, c = np.round(img_layer.world_to_data((y, x))).astype(int)
            assert np.asarray(image[0][0][r, c]) > np.asarray(image[0][0][1, 1])
    if layout == "write_visium_hd":  # every 8 µm bin's planted centre lies on its own bin of the grid
        (cells,) = cells
        from napari.layers import Labels

        grid = Labels(cells[0], **{k: v for k, v in cells[1].items() if k != "metadata"})
        mask, adata = cells[1]["metadata"]["mask"], cells[1]["metadata"]["adata"]
        for (x, y), barcode in zip(info[8]["centre_px"], info[8]["barcode"]):
            assert adata.obs_names[mask.row_at(np.round(grid.world_to_data((y, x))).astype(int))] == barcode
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before  # nothing written next to it


def test_an_h5ad_of_two_sections_opens_as_one_layer_per_section_on_its_own_image(tmp_path, make_napari_viewer):
    """Two Visium libraries in one AnnData (``library_id`` in obs): two images, two spot layers, one table."""
    from napari_annotatability._napari._model import cell_model
    from napari_annotatability._napari._reader import napari_get_reader

    squidpy_tiny = Path(__file__).resolve().parents[2] / "shared" / "data" / "squidpy_tiny" / "test_data.h5ad"
    if not squidpy_tiny.exists():
        pytest.skip(f"the real squidpy test section is not at {squidpy_tiny}")
    one = ad.read_h5ad(squidpy_tiny)
    lib = next(iter(one.uns["spatial"]))
    two = one.copy()
    two.obs_names = [f"{n}-b" for n in two.obs_names]
    both = ad.concat([one, two], label="library_id", keys=[lib, "second"])
    both.obs["library_id"] = both.obs["library_id"].astype("category")
    second = {k: v for k, v in one.uns["spatial"][lib].items()}
    second["scalefactors"] = dict(second["scalefactors"])
    second["scalefactors"]["tissue_hires_scalef"] = second["scalefactors"]["tissue_hires_scalef"] / 2  # its own image scale
    both.uns["spatial"] = {lib: one.uns["spatial"][lib], "second": second}
    both.obs["leiden"] = one.obs["leiden"].tolist() * 2
    both.obs["leiden"] = both.obs["leiden"].astype("category")
    path = tmp_path / "two_sections.h5ad"
    both.write_h5ad(path)

    layers = napari_get_reader(str(path))(str(path))
    kinds = [t[2] for t in layers]
    assert kinds.count("image") == 2 and kinds.count("points") == 2
    points = [t for t in layers if t[2] == "points"]
    adatas = {id(t[1]["metadata"]["adata"]) for t in points}
    assert len(adatas) == 1  # one table, trained jointly
    rows = [t[1]["metadata"]["rows"] for t in points]
    assert sorted(np.concatenate(rows).tolist()) == list(range(98)) and len(rows[0]) == len(rows[1]) == 49
    images = [t for t in layers if t[2] == "image"]
    assert images[1][1]["scale"][0] == pytest.approx(2 * images[0][1]["scale"][0])
    viewer = make_napari_viewer()
    for data, kwargs, kind in layers:
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    model = cell_model(viewer)
    assert len(model.cells()) == 2 and len(model.sharing(model.cells()[0].adata)) == 2
