"""Region summaries (core) and the shape geometry the region inspector and data map use."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_annotatability.core import AnnotatabilityInputError, keys, region_summary
from napari_annotatability.core.genes import expression


def _scored(n=400, g=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(1.0, 0.3, (n, g)).astype(np.float32)
    region = np.zeros(n, dtype=bool)
    region[:60] = True
    X[region, 7] += 2.0  # gene_7 marks the region
    X[region, 3] += 1.0  # gene_3, less so
    labels = pd.Categorical(rng.choice(["a", "b", "c"], n))
    cats = pd.Categorical(rng.choice(list(keys.CATEGORIES), n), categories=list(keys.CATEGORIES))
    obs = pd.DataFrame({"label": labels, keys.CATEGORY: cats,
                        keys.CONFIDENCE: rng.uniform(0, 1, n), keys.VARIABILITY: rng.uniform(0, 0.4, n)},
                       index=[f"c{i}" for i in range(n)])
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"gene_{j}" for j in range(g)]))
    adata.uns[keys.UNS] = {"label_key": "label"}
    return adata, region


@pytest.mark.parametrize("sparse", [False, True])
def test_summary_counts_means_and_marker_genes(sparse):
    adata, region = _scored()
    if sparse:
        adata.X = sp.csr_matrix(adata.X)
    s = region_summary(adata, region, n_genes=5)
    obs = adata.obs[region]
    assert s.n_cells == 60 and s.n_total == 400
    assert list(s.categories) == list(keys.CATEGORIES)
    assert s.categories == {c: int((obs[keys.CATEGORY] == c).sum()) for c in keys.CATEGORIES}
    assert s.labels == obs["label"].astype(str).value_counts().to_dict()
    assert s.mean_confidence == pytest.approx(obs[keys.CONFIDENCE].mean())
    assert s.mean_variability == pytest.approx(obs[keys.VARIABILITY].mean())
    assert list(s.top_genes["gene"][:2]) == ["gene_7", "gene_3"]
    X = adata.X.toarray() if sparse else adata.X
    assert s.top_genes["mean_in"][0] == pytest.approx(X[region, 7].mean(), rel=1e-5)
    assert s.top_genes["mean_out"][0] == pytest.approx(X[~region, 7].mean(), rel=1e-5)
    assert (s.top_genes["r"] > 0).all() and s.top_genes["r"].is_monotonic_decreasing
    assert "60 of 400 cells" in s.as_text()


def test_positions_equal_mask_and_edge_cases():
    adata, region = _scored()
    by_pos = region_summary(adata, np.flatnonzero(region))
    by_mask = region_summary(adata, region)
    assert by_pos.categories == by_mask.categories and by_pos.labels == by_mask.labels
    empty = region_summary(adata, np.zeros(adata.n_obs, dtype=bool))
    assert empty.n_cells == 0 and np.isnan(empty.mean_confidence) and len(empty.top_genes) == 0
    assert sum(empty.categories.values()) == 0
    everything = region_summary(adata, np.ones(adata.n_obs, dtype=bool))
    assert everything.n_cells == adata.n_obs and len(everything.top_genes) == 0


def test_a_region_of_one_section_is_counted_and_contrasted_within_that_section():
    """Two sections share one AnnData: a region drawn on section B is '60 of B's cells', and its
    marker genes contrast it with the rest of B, not with section A too."""
    adata, region = _scored()
    section_b = np.zeros(adata.n_obs, dtype=bool)
    section_b[np.flatnonzero(region)] = True
    section_b[np.flatnonzero(~region)[:140]] = True  # B: the region + 140 other cells
    X = np.asarray(adata.X, dtype=np.float64).copy()
    X[~section_b, 11] += 50.0  # a gene high only in section A: not a marker of B's region
    adata.X = X
    s = region_summary(adata, region, n_genes=5, within=section_b)
    assert s.n_cells == 60 and s.n_total == 200 and "60 of 200 cells" in s.as_text()
    assert "gene_11" not in set(s.top_genes["gene"])
    rest_of_b = section_b & ~region
    assert s.top_genes["mean_out"][0] == pytest.approx(X[rest_of_b, 7].mean(), rel=1e-5)
    assert region_summary(adata, region, within=np.flatnonzero(section_b)).n_total == 200
    # over every cell, section A's gene does not mark the region either, but the cells counted differ
    assert region_summary(adata, region).n_total == 400
    with pytest.raises(AnnotatabilityInputError, match="not among the `within` cells"):
        region_summary(adata, region, within=~section_b)


def test_unscored_data_gives_labels_only():
    adata, region = _scored()
    del adata.obs[keys.CATEGORY], adata.obs[keys.CONFIDENCE]
    s = region_summary(adata, region, label_key="label")
    assert s.categories == {} and np.isnan(s.mean_confidence) and sum(s.labels.values()) == 60


def test_bad_regions_are_named():
    adata, _ = _scored()
    with pytest.raises(AnnotatabilityInputError, match="shape"):
        region_summary(adata, np.ones(5, dtype=bool))
    with pytest.raises(AnnotatabilityInputError, match="positions"):
        region_summary(adata, [0, 400])


def test_expression_reads_one_gene():
    adata, _ = _scored()
    np.testing.assert_allclose(expression(adata, "gene_7"), adata.X[:, 7])
    adata.X = sp.csr_matrix(adata.X)
    np.testing.assert_allclose(expression(adata, "gene_7"), adata.X[:, [7]].toarray().ravel())
    with pytest.raises(AnnotatabilityInputError, match="gene_x"):
        expression(adata, "gene_x")


# -- geometry (no Qt, but lives in the napari shell) -------------------------------------


def test_inside_shapes_match_their_geometry():
    pytest.importorskip("napari")
    from napari_annotatability._napari._selection import inside_shape

    rng = np.random.default_rng(1)
    pts = rng.uniform(-20, 20, (5000, 2))
    rect = np.array([[-5, -10], [-5, 10], [5, 10], [5, -10]])
    np.testing.assert_array_equal(inside_shape("rectangle", rect, pts),
                                  (np.abs(pts[:, 0]) <= 5) & (np.abs(pts[:, 1]) <= 10))
    # ellipse stored as the corners of its bounding box, rotated by 30 degrees
    th = np.deg2rad(30)
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    corners = np.array([[-8, -3], [8, -3], [8, 3], [-8, 3]]) @ R.T + [2, 1]
    local = (pts - [2, 1]) @ R  # back into the ellipse's frame
    np.testing.assert_array_equal(inside_shape("ellipse", corners, pts),
                                  (local[:, 0] / 8) ** 2 + (local[:, 1] / 3) ** 2 <= 1)
    tri = np.array([[0, 0], [10, 0], [0, 10]])
    np.testing.assert_array_equal(inside_shape("polygon", tri, pts),
                                  (pts[:, 0] >= 0) & (pts[:, 1] >= 0) & (pts.sum(1) <= 10))
    assert not inside_shape("line", tri[:2], pts).any() and not inside_shape("path", tri, pts).any()
    # a point exactly on a rectangle's edge counts
    assert inside_shape("rectangle", rect, np.array([[5.0, 0.0], [-5.0, 10.0]])).all()


def test_spots_in_shapes_uses_world_coordinates():
    pytest.importorskip("napari")
    from napari.layers import Points, Shapes

    from napari_annotatability._napari._selection import spots_in_shapes

    pts = np.array([[10.0, 10.0], [50.0, 50.0], [90.0, 90.0]])
    spots = Points(pts, scale=(2, 2))  # world: (20, 20), (100, 100), (180, 180)
    shapes = Shapes([np.array([[90, 90], [110, 110]])], shape_type="rectangle")
    np.testing.assert_array_equal(spots_in_shapes(spots, shapes), [False, True, False])
    shapes.add_lines(np.array([[0, 0], [200, 200]]))  # a line covers nothing
    np.testing.assert_array_equal(spots_in_shapes(spots, shapes), [False, True, False])
    shapes.add_ellipses(np.array([[180, 180], [5, 5]]))  # centre and radii
    np.testing.assert_array_equal(spots_in_shapes(spots, shapes), [False, True, True])
    np.testing.assert_array_equal(spots_in_shapes(spots, shapes, indices=[2]), [False, False, True])
