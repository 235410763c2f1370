"""Core exports without napari: table layout, atomic writes, clear errors."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_annotatability import core
from napari_annotatability.core.export import spots_table, write_spots_csv, write_spots_geojson


def _spots():
    a = ad.AnnData(np.zeros((3, 1), dtype=np.float32),
                   obs=pd.DataFrame({"x": [9, 9, 9], "label": pd.Categorical(["a", "b", None])},
                                    index=["s1", "s2", "s3"]))
    a.obsm["spatial"] = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    return a


def test_table_puts_coordinates_first_and_keeps_clashing_obs_columns():
    t = spots_table(_spots())
    assert list(t.columns) == ["cell", "x", "y", "obs_x", "label"]
    np.testing.assert_array_equal(t[["x", "y"]].to_numpy(), [[1, 2], [3, 4], [5, 6]])


def test_geojson_points_without_a_diameter_and_nan_as_null(tmp_path):
    import json

    out = write_spots_geojson(_spots(), tmp_path / "s.geojson")
    doc = json.loads(out.read_text())
    assert doc["features"][0]["geometry"] == {"type": "Point", "coordinates": [1.0, 2.0]}
    assert doc["features"][2]["properties"]["label"] is None


def test_missing_coordinates_and_bad_folder_are_clear(tmp_path):
    a = _spots()
    del a.obsm["spatial"]
    with pytest.raises(core.AnnotatabilityInputError, match="obsm\\['spatial'\\]"):
        write_spots_csv(a, tmp_path / "x.csv")
    with pytest.raises(core.AnnotatabilityInputError, match="folder does not exist"):
        write_spots_csv(_spots(), tmp_path / "nope" / "x.csv")
    assert list(tmp_path.iterdir()) == []
