"""Opening what the instruments write: detection, the platform readers, the table to score, the CLI.

Each platform is a tiny folder in that platform's layout (tests/platform_layouts.py) read by
spatialdata-io's own reader; the two Visium inputs are real (../shared/data or the package data);
bento-tools' merfish_sample.zarr is a real SpatialData store, fetched once by name (skipped offline).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_annotatability import cli
from napari_annotatability.core import AnnotatabilityInputError, platforms
from napari_annotatability.core.platforms import ACCEPTED, detect, read_sdata, read_table, table_from_sdata

pytest.importorskip("spatialdata_io", reason='the platform readers: pip install "napari-annotatability[platforms]"')

import platform_layouts as pl  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PACKAGE_VISIUM = ROOT / "src" / "napari_annotatability" / "_data" / "visium_tiny"
VISIUM_TINY = SHARED / "visium_tiny" if (SHARED / "visium_tiny").is_dir() else PACKAGE_VISIUM
SQUIDPY_TINY = SHARED / "squidpy_tiny" / "test_data.h5ad"

WRITERS = {
    "xenium": lambda tmp: pl.write_xenium(tmp / "output-XETG00000__0010000__tiny__20240101__000000"),
    "merscope": lambda tmp: pl.write_merscope(tmp / "202401011200_tiny_VMSC00001" / "region_0"),
    "cosmx": lambda tmp: pl.write_cosmx(tmp / "cosmx_export"),
    "visium_hd": lambda tmp: pl.write_visium_hd(tmp / "outs"),
}


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*")}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ------------------------------------------------------------------------------------------------ detection
@pytest.mark.parametrize("kind", list(WRITERS))
def test_detect_each_platform_layout(kind, tmp_path):
    path, _ = WRITERS[kind](tmp_path)
    assert detect(path) == kind
    assert detect(str(path)) == kind


def test_detect_files_and_the_real_visium_inputs(tmp_path):
    assert detect(VISIUM_TINY) == "visium"
    assert detect(VISIUM_TINY / "filtered_feature_bc_matrix.h5") == "visium"
    if SQUIDPY_TINY.exists():
        assert detect(SQUIDPY_TINY) == "h5ad"
    xenium, _ = pl.write_xenium(tmp_path / "xe")
    assert detect(xenium / "experiment.xenium") == "xenium"
    hd, _ = pl.write_visium_hd(tmp_path / "hd")
    assert detect(hd / "binned_outputs" / "square_016um" / "filtered_feature_bc_matrix.h5") == "visium_hd"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("nothing to see")
    assert detect(tmp_path / "notes") is None
    assert detect(tmp_path / "notes" / "readme.txt") is None
    assert detect(tmp_path / "absent") is None


def test_detect_a_spatialdata_store(tmp_path):
    sdata = _two_section_sdata(overlap=True)
    sdata.write(tmp_path / "cells.zarr")
    assert detect(tmp_path / "cells.zarr") == "spatialdata"


# ------------------------------------------------------------------------------------------------ reading
@pytest.mark.parametrize("kind", list(WRITERS))
def test_read_table_places_every_cell_and_writes_nothing(kind, tmp_path):
    path, info = WRITERS[kind](tmp_path)
    before = _listing(path)
    adata = read_table(path)
    assert _listing(path) == before, "the reader wrote into the input folder"
    xy = adata.obsm["spatial"]
    assert xy.dtype == np.float64 and xy.shape == (adata.n_obs, 2) and np.isfinite(xy).all()
    source = adata.uns["annotatability_source"]
    assert source["kind"] == kind and source["units"] == "pixel" and source["regions"]
    assert "section" not in adata.obs  # CosMx FOVs tile one slide: one section
    if kind == "visium_hd":
        assert adata.n_obs == len(info[8]["barcode"]) and source["table"] == "square_008um"
        planted = pd.DataFrame(info[8]["centre_px"], index=info[8]["barcode"]).loc[adata.obs_names].to_numpy()
    else:
        assert adata.n_obs == 20 and adata.n_vars == len(pl.GENES)
        planted = info["centre_px"] if "centre_px" in info else info["centre_global"]
        if kind == "xenium":
            planted = pd.DataFrame(planted, index=info["cell_id"]).loc[adata.obs["cell_id"]].to_numpy()
        elif kind == "merscope":
            planted = pd.DataFrame(planted, index=info["cell_id"]).loc[adata.obs["EntityID"]].to_numpy()
        else:
            order = adata.obs["fov"].astype(int).to_numpy() * 1000 + adata.obs["cell_ID"].to_numpy()
            mine = np.concatenate([1000 * f + np.arange(1, n + 1) for f, n in enumerate(info["per_fov"], 1)])
            planted = pd.DataFrame(planted, index=mine).loc[order].to_numpy()
    np.testing.assert_allclose(xy, planted, atol=1e-3)  # each cell where it was planted, in pixels
    assert int(np.asarray(adata.X.sum())) > 0


def test_xenium_mask_cell_ids_and_lazy_images(tmp_path):
    path, info = pl.write_xenium(tmp_path / "xe")
    sdata = read_sdata(path)
    assert "transcripts" not in sdata.points and "nucleus_boundaries" not in sdata.shapes
    source = table_from_sdata(sdata).uns["annotatability_source"]
    assert source["regions"] == ["cell_labels"] and source["instance_key"] == "cell_labels"
    mask = sdata.labels["cell_labels"]["scale0"].ds["image"].data
    assert type(mask).__module__.startswith("dask")  # nothing loaded whole
    table = table_from_sdata(sdata)
    cx, cy = np.round(table.obsm["spatial"][3] - 0.5).astype(int)  # pixel centre -> its index
    assert int(mask[cy, cx].compute()) == int(table.obs["cell_labels"].iloc[3])


def test_visium_hd_bin_size_is_chosen_and_a_missing_one_is_named(tmp_path):
    path, info = pl.write_visium_hd(tmp_path / "hd", bins=(8, 16))
    assert platforms.visium_hd_bins(path) == [8, 16]
    adata = read_table(path, bin_size=16)
    assert adata.n_obs == len(info[16]["barcode"]) and adata.uns["annotatability_source"]["table"] == "square_016um"
    with pytest.raises(AnnotatabilityInputError, match=r"no 2 µm bins.*8 µm, 16 µm"):
        read_table(path, bin_size=2)
    # the .h5 of one bin: that bin, whatever bin_size says
    h5 = path / "binned_outputs" / "square_016um" / "filtered_feature_bc_matrix.h5"
    assert read_table(h5).n_obs == len(info[16]["barcode"])


def test_real_visium_folder_and_its_h5(tmp_path):
    adata = read_table(VISIUM_TINY)
    assert adata.n_obs > 0 and adata.obsm["spatial"].shape == (adata.n_obs, 2)
    assert read_table(VISIUM_TINY / "filtered_feature_bc_matrix.h5").n_obs == adata.n_obs
    if SQUIDPY_TINY.exists():
        assert read_table(SQUIDPY_TINY).n_obs == 49


# ------------------------------------------------------------------------------------------------ errors
def test_unknown_folder_says_what_is_accepted(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "counts.csv").write_text("a,b\n1,2\n")
    with pytest.raises(AnnotatabilityInputError) as err:
        read_table(tmp_path / "run")
    assert ACCEPTED in str(err.value) and "\n" not in str(err.value)
    for name in ("Xenium", "MERSCOPE", "CosMx", "Visium HD", "SpatialData", ".h5ad", "experiment.xenium"):
        assert name in ACCEPTED
    with pytest.raises(AnnotatabilityInputError, match="not found"):
        read_table(tmp_path / "nowhere")


def test_missing_spatialdata_io_names_the_extra(tmp_path, monkeypatch):
    path, _ = pl.write_xenium(tmp_path / "xe")
    monkeypatch.setitem(sys.modules, "spatialdata_io", None)  # import fails as if not installed
    with pytest.raises(AnnotatabilityInputError, match=r"spatialdata-io.*napari-annotatability\[platforms\]"):
        read_table(path)


def test_a_broken_platform_folder_names_what_is_missing(tmp_path):
    path, _ = pl.write_merscope(tmp_path / "slide" / "region_0")
    (path / "images" / "micron_to_mosaic_pixel_transform.csv").unlink()
    with pytest.raises(AnnotatabilityInputError, match="MERSCOPE.*micron_to_mosaic_pixel_transform.csv"):
        read_table(path)


# ------------------------------------------------------------------------------------------------ SpatialData
def _two_section_sdata(overlap: bool):
    import spatialdata as sd
    from spatialdata.models import ShapesModel, TableModel
    from spatialdata.transformations import Identity

    shapes = {}
    for k, name in enumerate(("section_a", "section_b")):
        xy = np.c_[np.arange(10.0) * 10, np.arange(10.0) % 3 * 10] + (0 if overlap else k * 1000)
        shapes[name] = ShapesModel.parse(xy, geometry=0, radius=np.full(10, 4.0), index=np.arange(10) + 1,
                                         transformations={"global": Identity()})
    obs = pd.DataFrame({"region": pd.Categorical(["section_a"] * 10 + ["section_b"] * 10),
                        "spot": np.r_[np.arange(10) + 1, np.arange(10) + 1]}, index=[f"c{i}" for i in range(20)])
    table = TableModel.parse(ad.AnnData(np.ones((20, 3), np.float32), obs=obs), region=["section_a", "section_b"],
                             region_key="region", instance_key="spot")
    return sd.SpatialData(shapes=shapes, tables={"table": table})


def test_overlapping_regions_are_sections_and_tiles_are_not():
    stacked = table_from_sdata(_two_section_sdata(overlap=True))
    assert list(stacked.obs["section"].cat.categories) == ["section_a", "section_b"]
    np.testing.assert_allclose(stacked.obsm["spatial"][10], [0.0, 0.0])
    tiled = table_from_sdata(_two_section_sdata(overlap=False))
    assert "section" not in tiled.obs and tiled.uns["annotatability_source"]["units"] == "unknown"


def test_table_choice_and_rows_without_a_cell():
    sdata = _two_section_sdata(overlap=True)
    sdata.tables["other"] = sdata.tables["table"].copy()
    assert table_from_sdata(sdata, table="other").uns["annotatability_source"]["table"] == "other"
    with pytest.raises(AnnotatabilityInputError, match="'nope' is not in the store"):
        table_from_sdata(sdata, table="nope")
    sdata.tables["first"] = sdata.tables.pop("table")  # two tables, neither called "table"
    with pytest.raises(AnnotatabilityInputError, match="several tables.*--table: other, first"):
        table_from_sdata(sdata)
    sdata.tables["first"].obs["spot"] = np.r_[np.arange(10) + 1, np.arange(10) + 50]
    with pytest.raises(AnnotatabilityInputError, match="10 table rows have no cell in 'section_b'"):
        table_from_sdata(sdata, table="first")


def test_store_without_a_table_counts_transcripts_per_cell_polygon():
    import dask.dataframe as dd
    import geopandas as gpd
    import shapely
    import spatialdata as sd
    from spatialdata.models import PointsModel, ShapesModel
    from spatialdata.transformations import Identity

    cells = ShapesModel.parse(gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)],
                                               index=["a", "b"]), transformations={"global": Identity()})
    pts = pd.DataFrame({"x": [1.0, 2, 3, 21, 22, 50], "y": [1.0, 2, 3, 5, 5, 50],
                        "gene": pd.Categorical(["G1", "G1", "G2", "G2", "G2", "G1"])})
    points = PointsModel.parse(dd.from_pandas(pts, npartitions=1), feature_key="gene",
                               transformations={"global": Identity()})
    adata = table_from_sdata(sd.SpatialData(shapes={"cell_boundaries": cells}, points={"transcripts": points}))
    counts = pd.DataFrame(adata.X.toarray(), index=adata.obs_names, columns=adata.var_names)
    assert counts.loc["a", "G1"] == 2 and counts.loc["a", "G2"] == 1 and counts.loc["b", "G2"] == 2
    assert counts.to_numpy().sum() == 5  # the transcript outside every cell is not counted
    np.testing.assert_allclose(adata.obsm["spatial"], [[5, 5], [25, 5]])
    assert adata.uns["annotatability_source"]["regions"] == ["cell_boundaries"]


# ------------------------------------------------------------------------------------------------ bento's MERFISH
BENTO_MEMBERS = "bento/datasets/merfish_sample.zarr/"


@pytest.fixture(scope="module")
def merfish_sample() -> Path:
    """bento-tools 2.1.4's merfish_sample.zarr (15 cells), fetched once into the benchmarks' cache."""
    import zipfile

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import real_data

    where = real_data.cache_dir("bento-tools", "2.1.4")
    store, done = where / BENTO_MEMBERS, where / "merfish_sample.complete"
    if done.is_file():
        return store
    where.mkdir(parents=True, exist_ok=True)
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=where))
    try:
        try:
            archive = real_data._pip_download("bento-tools", "2.1.4", "wheel", tmp)
        except RuntimeError as exc:
            pytest.skip(f"bento-tools 2.1.4 could not be fetched (offline?): {str(exc).splitlines()[0]}")
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m.startswith(BENTO_MEMBERS) and not m.endswith("/")]
        real_data._extract(archive, members, where)
        done.write_text("\n".join(members))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return store


def test_bento_merfish_sample_is_scored_on_transcript_counts(merfish_sample):
    import spatialdata as sd

    assert detect(merfish_sample) == "spatialdata"
    before = _listing(merfish_sample)
    adata = read_table(merfish_sample)
    assert _listing(merfish_sample) == before
    assert adata.n_obs == 15 and adata.n_vars > 50
    assert (np.asarray(adata.X.sum(1)).ravel() > 0).all()
    polygons = sd.read_zarr(merfish_sample)["cell_boundaries"]
    expected = np.c_[polygons.centroid.x, polygons.centroid.y]
    order = pd.Index(polygons.index.astype(str)).get_indexer(adata.obs["cell_id"])
    np.testing.assert_allclose(adata.obsm["spatial"], expected[order])
    assert adata.uns["annotatability_source"]["regions"] == ["cell_boundaries"]


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_scores_a_xenium_folder(tmp_path, capsys):
    path, _ = pl.write_xenium(tmp_path / "xe", n_cells=60, cell_type=True)
    before = _listing(path)
    out = tmp_path / "scored.h5ad"
    rc = cli.main(["score", str(path), "--label", "cell_type", "--out", str(out), "--epochs", "3", "--quiet",
                   "--no-genes"])
    assert rc == 0, capsys.readouterr().err
    scored = ad.read_h5ad(out)
    assert scored.n_obs == 60 and "annot_confidence" in scored.obs
    assert scored.uns["annotatability_source"]["kind"] == "xenium" and np.isfinite(scored.obsm["spatial"]).all()
    assert _listing(path) == before


def test_cli_unknown_folder_is_one_line_listing_what_is_accepted(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    rc = cli.main(["score", str(tmp_path / "run"), "--label", "x", "--out", str(tmp_path / "o.h5ad")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Accepted inputs" in err and "Xenium" in err
    assert not (tmp_path / "o.h5ad").exists()
    assert os.listdir(tmp_path / "run") == []
