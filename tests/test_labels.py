"""Which obs columns are annotations: one rule (core.labels) for the widget, the CLI and the engine."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_annotatability import cli, core
from napari_annotatability.core import keys


@pytest.fixture
def obs():
    n = 200
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "cell_type": pd.Categorical(rng.choice(["B", "T", "NK"], n)),
        "text": rng.choice(["a", "b"], n).astype(object),
        "cluster": rng.integers(1, 9, n),  # an instrument's 1-based Cluster numbers
        "z_level": rng.choice([0.0, 1.5, 3.0, 4.5, 6.0], n),
        "area": rng.random(n) * 100,  # a measurement
        "barcode": [f"c{i}" for i in range(n)],  # one per cell
        "flag": rng.random(n) > 0.5,
        "one": pd.Categorical(["x"] * n),
        keys.SUGGESTED_LABEL: pd.Categorical(rng.choice(["B", "T"], n)),
    }, index=[f"c{i}" for i in range(n)])


def test_annotations_are_labels_and_numeric_codes_not_measurements_ids_flags_or_results(obs):
    assert core.annotation_columns(obs) == ["cell_type", "text", "cluster", "z_level"]
    assert "measurement" in core.annotation_problem(obs, "area")
    assert "not an annotation" in core.annotation_problem(obs, "barcode")
    assert "yes/no flag" in core.annotation_problem(obs, "flag") and "astype('category')" in core.annotation_problem(obs, "flag")
    assert "at least 2" in core.annotation_problem(obs, "one")
    assert "result of Annotatability" in core.annotation_problem(obs, keys.SUGGESTED_LABEL)


def test_curated_copies_can_be_left_out(obs):
    obs[keys.curated_key("cell_type")] = obs["cell_type"]
    assert keys.curated_key("cell_type") in core.annotation_columns(obs)
    assert keys.curated_key("cell_type") not in core.annotation_columns(obs, exclude_curated=True)


def test_a_categorical_with_unused_categories_counts_the_used_ones():
    obs = pd.DataFrame({"k": pd.Categorical(["a"] * 10, categories=["a", "b", "c"])})
    assert "1 distinct label" in core.annotation_problem(obs, "k")


def _file(tmp_path, obs):
    rng = np.random.default_rng(1)
    adata = ad.AnnData(X=rng.random((len(obs), 20)).astype(np.float32), obs=obs)
    path = tmp_path / "in.h5ad"
    adata.write_h5ad(path)
    return path


@pytest.mark.parametrize("column, message", [("area", "measurement"), ("flag", "yes/no flag"),
                                             (keys.SUGGESTED_LABEL, "result of Annotatability")])
def test_the_cli_refuses_what_the_widget_does_not_offer_with_the_same_words(obs, tmp_path, capsys, column, message):
    path = _file(tmp_path, obs)
    out = tmp_path / "out.h5ad"
    rc = cli.main(["score", str(path), "--label", column, "--out", str(out), "--epochs", "2", "--quiet"])
    assert rc != 0 and message in capsys.readouterr().err and not out.exists()


def test_the_cli_scores_numeric_codes_the_widget_offers(obs, tmp_path):
    path = _file(tmp_path, obs)
    out = tmp_path / "out.h5ad"
    assert cli.main(["score", str(path), "--label", "z_level", "--out", str(out), "--epochs", "3", "--no-genes",
                     "--quiet"]) == 0
    assert ad.read_h5ad(out).uns["annotatability"]["label_key"] == "z_level"


def test_natural_order_in_legends():
    pytest.importorskip("qtpy")
    from napari_annotatability._napari._legend import natural_order

    assert natural_order(["0", "1", "10", "2"]) == ["0", "1", "2", "10"]
    assert natural_order(["c1", "c10", "c2"]) == ["c1", "c2", "c10"]
    assert natural_order(list(keys.CATEGORIES)) == list(keys.CATEGORIES)  # an order chosen on purpose stays
