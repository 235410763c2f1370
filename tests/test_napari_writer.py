"""Exports: every writer round-trips, never writes over the input, never during a training."""

from __future__ import annotations

import hashlib
import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")

from napari_annotatability import core  # noqa: E402
from napari_annotatability.core import keys  # noqa: E402


@pytest.fixture
def scored_layer(make_napari_viewer, tmp_path):
    """A scored synthetic section saved to disk and opened through the plugin's reader."""
    adata = core.make_synthetic_tissue(n_spots=400, seed=2)
    core.score(adata, "label", epochs=5, seed=0)
    src = tmp_path / "section.h5ad"
    adata.write_h5ad(src)
    viewer = make_napari_viewer()
    layers = viewer.open(str(src), plugin="napari-annotatability")
    return viewer, layers[-1], src


def _digest(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("ext", [".h5ad", ".csv", ".geojson"])
@pytest.mark.slow
def test_save_layer_round_trips(scored_layer, tmp_path, ext):
    viewer, layer, src = scored_layer
    adata = layer.metadata["adata"]
    out = tmp_path / f"export{ext}"
    viewer.layers.selection.active = layer
    written = viewer.layers.save(str(out), selected=True, plugin="napari-annotatability")
    assert written == [str(out)] and out.exists()
    xy = adata.obsm["spatial"]
    if ext == ".h5ad":
        back = ad.read_h5ad(out)
        np.testing.assert_array_equal(back.obsm["spatial"], xy)
        np.testing.assert_array_equal(back.obs[keys.CONFIDENCE], adata.obs[keys.CONFIDENCE])
        assert back.obs[keys.CATEGORY].equals(adata.obs[keys.CATEGORY])
    elif ext == ".csv":
        back = pd.read_csv(out)
        np.testing.assert_allclose(back[["x", "y"]].to_numpy(), xy)
        np.testing.assert_allclose(back[keys.CONFIDENCE], adata.obs[keys.CONFIDENCE], rtol=1e-6)
        assert list(back["cell"]) == list(adata.obs_names)
        assert list(back[keys.SUGGESTED_LABEL]) == list(adata.obs[keys.SUGGESTED_LABEL].astype(str))
    else:
        doc = json.loads(out.read_text())
        feats = doc["features"]
        assert doc["type"] == "FeatureCollection" and len(feats) == adata.n_obs
        ring = np.array(feats[0]["geometry"]["coordinates"][0])
        np.testing.assert_allclose(ring[:-1].mean(0), xy[0], rtol=1e-9)  # circle centred on the spot
        radius = np.linalg.norm(ring[0] - xy[0])
        d = adata.uns["spatial"]["synthetic"]["scalefactors"]["spot_diameter_fullres"]
        assert radius == pytest.approx(d / 2)
        props = feats[5]["properties"]
        assert props["cell"] == adata.obs_names[5]
        assert props[keys.CATEGORY] == adata.obs[keys.CATEGORY].iloc[5]
        assert props[keys.CONFIDENCE] == pytest.approx(float(adata.obs[keys.CONFIDENCE].iloc[5]))
        gpd = pytest.importorskip("geopandas")
        gdf = gpd.read_file(out)
        np.testing.assert_allclose(np.c_[gdf.centroid.x, gdf.centroid.y], xy, rtol=1e-3)


@pytest.mark.slow
def test_never_over_the_input_file(scored_layer, monkeypatch):
    viewer, layer, src = scored_layer
    before = _digest(src)
    messages = []
    monkeypatch.setattr("napari.utils.notifications.show_error", messages.append)
    from napari_annotatability._napari._writer import write_h5ad

    data, meta, _ = layer.as_layer_data_tuple()
    assert write_h5ad(str(src), data, meta) == []
    assert _digest(src) == before and "refusing to overwrite" in messages[0]


@pytest.mark.slow
def test_refused_while_training(scored_layer, tmp_path, monkeypatch):
    viewer, layer, src = scored_layer
    messages = []
    monkeypatch.setattr("napari.utils.notifications.show_error", messages.append)
    from napari_annotatability._napari._writer import write_csv

    layer.metadata["training"] = True
    data, meta, _ = layer.as_layer_data_tuple()
    out = tmp_path / "mid.csv"
    assert write_csv(str(out), data, meta) == []
    assert not out.exists() and "training is running" in messages[0]


def test_plain_points_layer_exports_its_features(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    layer = viewer.add_points(np.array([[10.0, 20.0], [30.0, 40.0]]), features={"score": [0.1, 0.9]})
    from napari_annotatability._napari._writer import write_csv

    data, meta, _ = layer.as_layer_data_tuple()
    out = tmp_path / "plain.csv"
    assert write_csv(str(out), data, meta) == [str(out)]
    back = pd.read_csv(out)
    np.testing.assert_allclose(back[["x", "y"]].to_numpy(), [[20, 10], [40, 30]])
    np.testing.assert_allclose(back["score"], [0.1, 0.9])
