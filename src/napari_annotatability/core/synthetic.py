"""Synthetic data with known ground truth: planted mislabels and intermediate cells.

Used by the demo, the tests and the benchmarks wherever the truth must be known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["make_synthetic", "make_synthetic_tissue", "make_synthetic_cells_sdata"]


def make_synthetic(
    n_cells: int = 2000,
    n_features: int = 200,
    n_classes: int = 5,
    *,
    mislabel_fraction: float = 0.05,
    intermediate_fraction: float = 0.05,
    separation: float = 2.0,
    latent_dim: int = 10,
    sparse: bool = False,
    seed: int = 0,
):
    """Log-normalised-like expression of ``n_classes`` cell types with planted label errors.

    Each class is a Gaussian cluster in a ``latent_dim`` space (centres ``separation`` apart
    on average), mapped to ``n_features`` non-negative features through a random loading
    matrix, plus noise; about half the entries are zero, like a log-normalised matrix.

    Ground truth in ``obs``: ``true_label``; ``label`` (the annotation to examine) equals
    ``true_label`` except for a ``mislabel_fraction`` of cells flipped to another class
    (``mislabelled == True``); an ``intermediate_fraction`` of cells sit halfway between two
    classes (``intermediate == True``, labelled as one of them).

    Returns an AnnData with float32 ``X`` (CSR when ``sparse``).
    """
    import anndata as ad

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, separation / np.sqrt(2), size=(n_classes, latent_dim))
    true = rng.integers(0, n_classes, size=n_cells)
    z = centres[true] + rng.normal(0, 1.0, size=(n_cells, latent_dim))
    intermediate = rng.random(n_cells) < intermediate_fraction
    partner = (true + rng.integers(1, n_classes, size=n_cells)) % n_classes
    z[intermediate] = 0.5 * (centres[true[intermediate]] + centres[partner[intermediate]]) + rng.normal(
        0, 0.5, size=(int(intermediate.sum()), latent_dim)
    )
    loadings = rng.normal(0, 1.0 / np.sqrt(latent_dim), size=(latent_dim, n_features))
    expr = z @ loadings + rng.normal(0, 0.5, size=(n_cells, n_features))
    X = np.maximum(expr, 0.0).astype(np.float32)

    label = true.copy()
    mislabelled = (rng.random(n_cells) < mislabel_fraction) & ~intermediate
    label[mislabelled] = (true[mislabelled] + rng.integers(1, n_classes, size=int(mislabelled.sum()))) % n_classes
    names = np.array([f"type_{i}" for i in range(n_classes)])
    cats = list(names)
    obs = pd.DataFrame(
        {
            "label": pd.Categorical(names[label], categories=cats),
            "true_label": pd.Categorical(names[true], categories=cats),
            "mislabelled": mislabelled,
            "intermediate": intermediate,
        },
        index=[f"cell_{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"gene_{j}" for j in range(n_features)])
    return ad.AnnData(sp.csr_matrix(X) if sparse else X, obs=obs, var=var)


REGION_NAMES = ("cortex", "medulla", "follicle", "stroma")
REGION_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b")


def make_synthetic_tissue(
    n_spots: int = 3000,
    n_genes: int = 200,
    *,
    mislabel_fraction: float = 0.04,
    transition_width: float = 0.12,
    image_size: int = 1000,
    seed: int = 0,
):
    """A synthetic Visium-like section: H&E-like image, spots in regions, planted errors.

    Four spatially coherent regions (``cortex``, ``medulla``, ``follicle``, ``stroma``) on a
    hexagonal spot grid inside a tissue outline; between ``cortex`` and ``medulla`` a graded
    transition zone where expression blends the two profiles with the distance to their
    boundary; and a ``mislabel_fraction`` of spots (outside the zone) whose annotation is
    planted wrong.  Ground truth is kept in ``obs``:

    * ``region`` -- the true region, ``label`` -- the annotation to examine,
    * ``mislabelled`` -- the planted errors, ``transition`` -- spots inside the graded zone,
      ``mix`` -- the fraction of the other region's profile in the spot.

    Spatial data follows scanpy/squidpy: ``obsm['spatial']`` holds (x, y) in full-resolution
    pixels and ``uns['spatial']['synthetic']`` an RGB ``hires`` image with its scalefactors.
    """
    import anndata as ad
    from scipy.ndimage import gaussian_filter, zoom

    rng = np.random.default_rng(seed)
    scalef = 0.25
    full = image_size / scalef  # full-resolution extent in pixels

    # tissue outline: a wobbly ellipse
    def inside(u, v):  # u, v in [0, 1]
        ang = np.arctan2(v - 0.5, u - 0.5)
        r = np.hypot((u - 0.5) / 0.46, (v - 0.5) / 0.40)
        wobble = 1 + 0.06 * np.sin(3 * ang + 1.3) + 0.04 * np.cos(5 * ang)
        return r < wobble

    # hexagonal grid dense enough for ~n_spots inside the outline
    area = np.pi * 0.46 * 0.40
    spacing = np.sqrt(area / (n_spots * np.sqrt(3) / 2))
    rows = np.arange(0, 1, spacing * np.sqrt(3) / 2)
    pts = [(j * spacing + (i % 2) * spacing / 2, r) for i, r in enumerate(rows) for j in range(int(1 / spacing) + 1)]
    u, v = np.array(pts).T
    keep = inside(u, v)
    u, v = u[keep], v[keep]

    # regions: noisy Voronoi of four seeds
    seeds = np.array([[0.30, 0.35], [0.62, 0.40], [0.45, 0.72], [0.78, 0.70]])
    field = gaussian_filter(rng.normal(size=(64, 64)), 6)
    field /= np.abs(field).max()
    jitter = field[(v * 63).astype(int), (u * 63).astype(int)] * 0.05
    d = np.hypot(u[:, None] - seeds[None, :, 0], v[:, None] - seeds[None, :, 1]) + jitter[:, None]
    region = d.argmin(axis=1)

    # graded transition between cortex (0) and medulla (1)
    s = (d[:, 1] - d[:, 0]) / 2  # > 0 on the cortex side
    t = np.clip(0.5 - s / (2 * transition_width), 0.0, 1.0)  # share of the medulla profile
    in_pair = np.isin(region, (0, 1))
    mix = np.where(in_pair, np.where(region == 0, t, 1 - t), 0.0)
    transition = in_pair & (mix > 0.1)

    # expression: region profiles in a latent space, blended in the zone
    latent = 8
    centres = rng.normal(0, 4.0, size=(4, latent))
    partner = np.where(region == 0, 1, np.where(region == 1, 0, region))
    z = (1 - mix)[:, None] * centres[region] + mix[:, None] * centres[partner]
    z += rng.normal(0, 0.5, size=z.shape)
    loadings = rng.normal(0, 1 / np.sqrt(latent), size=(latent, n_genes))
    X = np.maximum(z @ loadings + rng.normal(0, 0.4, size=(len(u), n_genes)), 0).astype(np.float32)

    label = region.copy()
    candidates = np.flatnonzero(~transition)
    n_bad = int(round(mislabel_fraction * len(u)))
    bad = rng.choice(candidates, size=min(n_bad, candidates.size), replace=False)
    label[bad] = (region[bad] + rng.integers(1, 4, size=bad.size)) % 4
    mislabelled = np.zeros(len(u), dtype=bool)
    mislabelled[bad] = True

    # an H&E-like image: eosin-pink tissue, hematoxylin nuclei whose density follows the regions
    n = image_size
    yy, xx = np.mgrid[0:n, 0:n] / n
    tissue = inside(xx, yy)
    dd = np.stack([np.hypot(xx - sx, yy - sy) for sx, sy in seeds]) + zoom(field, n / 64, order=1)[None] * 0.05
    reg_img = dd.argmin(axis=0)
    density = np.array([0.030, 0.012, 0.050, 0.006])[reg_img] * tissue
    nuclei = gaussian_filter((rng.random((n, n)) < density).astype(np.float32), 1.3)
    nuclei = np.clip(nuclei / (nuclei.max() + 1e-9) * 2.5, 0, 1)
    fibres = gaussian_filter(rng.normal(size=(n, n)), 3)
    fibres = 0.5 + 0.5 * fibres / (np.abs(fibres).max() + 1e-9)
    eosin = np.array([236, 160, 196]) * (0.9 + 0.1 * fibres[..., None])
    haem = np.array([72, 48, 130])
    tissue_rgb = eosin * (1 - nuclei[..., None]) + haem * nuclei[..., None]
    background = np.array([246, 244, 247])
    edge = gaussian_filter(tissue.astype(np.float32), 2)[..., None]
    img = (tissue_rgb * edge + background * (1 - edge)).clip(0, 255).astype(np.uint8)

    names = np.array(REGION_NAMES)
    cats = list(REGION_NAMES)
    obs = pd.DataFrame(
        {
            "label": pd.Categorical(names[label], categories=cats),
            "region": pd.Categorical(names[region], categories=cats),
            "mislabelled": mislabelled,
            "transition": transition,
            "mix": mix.astype(np.float32),
        },
        index=[f"spot_{i}" for i in range(len(u))],
    )
    adata = ad.AnnData(X, obs=obs, var=pd.DataFrame(index=[f"gene_{j}" for j in range(n_genes)]))
    adata.obsm["spatial"] = np.column_stack([u * full, v * full]).astype(np.float64)  # (x, y)
    adata.uns["spatial"] = {
        "synthetic": {
            "images": {"hires": img},
            "scalefactors": {
                "tissue_hires_scalef": scalef,
                "spot_diameter_fullres": float(0.75 * spacing * full),
            },
            "metadata": {"source": "napari_annotatability.core.make_synthetic_tissue", "seed": int(seed)},
        }
    }
    adata.uns["label_colors"] = list(REGION_COLORS)
    adata.uns["region_colors"] = list(REGION_COLORS)
    return adata


def make_synthetic_cells_sdata(
    seed: int = 0,
    *,
    n_cells: int = 3000,
    n_genes: int = 200,
    image_size: int = 2048,
    pixel_size: float = 0.5,
    origin: tuple[float, float] = (120.0, 80.0),
    mislabel_fraction: float = 0.04,
):
    """A synthetic single-cell section as a SpatialData object, as spatialdata-io writes a Xenium run.

    The cells are those of :func:`make_synthetic_tissue` (four regions, a graded transition zone,
    planted mislabels), jittered off the hexagonal grid and drawn as a segmentation: each cell is
    the Voronoi region of its centre clipped to a disc.

    Elements (all in the ``global`` coordinate system, in µm: ``pixel_size`` µm per pixel and the
    image's top-left corner at ``origin`` = (x, y) µm):

    * ``morphology`` -- a (c, y, x) uint16 image pyramid (3 levels) with a ``DAPI`` channel (nuclei)
      and a ``membrane`` channel (cell outlines);
    * ``cell_labels`` -- the segmentation mask pyramid, label id = ``obs['cell_id']``;
    * ``table`` -- the expression table annotating ``cell_labels`` (``region_key='region'``,
      ``instance_key='cell_id'``), ``obsm['spatial']`` the (x, y) µm cell centres, and the ground
      truth of the tissue sample: ``label`` (to examine), ``true_label``, ``mislabelled``,
      ``transition``, ``mix``.
    """
    import warnings

    from scipy.ndimage import distance_transform_edt, gaussian_filter

    try:
        import spatialdata as sd
        from spatialdata.models import Image2DModel, Labels2DModel, TableModel
        from spatialdata.transformations import Scale, Sequence, Translation
    except ImportError as err:  # pragma: no cover - spatialdata comes with squidpy
        from .errors import AnnotatabilityInputError

        raise AnnotatabilityInputError("the SpatialData sample needs the 'spatialdata' package: "
                                       'pip install "napari-annotatability[platforms]"') from err

    rng = np.random.default_rng(seed + 1000)
    tissue = make_synthetic_tissue(n_cells, n_genes, mislabel_fraction=mislabel_fraction, image_size=64, seed=seed)
    full = 64 / 0.25  # make_synthetic_tissue's full-resolution extent
    uv = tissue.obsm["spatial"] / full  # (u, v) in [0, 1]
    n = len(uv)
    spacing = np.sqrt(np.pi * 0.46 * 0.40 / (n * np.sqrt(3) / 2)) * image_size  # grid spacing in pixels
    centre = uv[:, ::-1] * image_size + rng.normal(0, 0.15 * spacing, size=(n, 2))  # (row, col) pixels
    rc = np.clip(np.floor(centre).astype(np.int64), 0, image_size - 1)
    flat = rc[:, 0] * image_size + rc[:, 1]
    _, first = np.unique(flat, return_index=True)
    keep = np.zeros(n, dtype=bool)
    keep[first] = True  # two cells on one pixel: keep one
    tissue, rc = tissue[keep].copy(), rc[keep]
    ids = np.arange(1, len(rc) + 1, dtype=np.int32)

    seeds = np.zeros((image_size, image_size), dtype=np.int32)
    seeds[rc[:, 0], rc[:, 1]] = ids
    dist, (iy, ix) = distance_transform_edt(seeds == 0, return_indices=True)
    labels = seeds[iy, ix]
    labels[dist > 0.6 * spacing] = 0
    del iy, ix
    nuclei = np.exp(-((dist / (0.22 * spacing)) ** 4)) * (labels > 0)
    dapi = 150 + 3200 * gaussian_filter(nuclei, 1.0) * rng.uniform(0.7, 1.3, size=len(ids) + 1)[labels]
    edge = np.zeros_like(labels, dtype=bool)
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    membrane = 120 + 1800 * gaussian_filter((edge & (labels > 0)).astype(np.float32), 0.8)
    noise = rng.normal(0, 40, size=(2, image_size, image_size))
    image = np.clip(np.stack([dapi, membrane]) + noise, 0, 65535).astype(np.uint16)

    ox, oy = origin
    to_um = Sequence([Scale([pixel_size, pixel_size], axes=("y", "x")), Translation([oy, ox], axes=("y", "x"))])
    obs = tissue.obs.rename(columns={"region": "true_label"})
    obs["cell_id"] = ids
    obs["region"] = pd.Categorical(["cell_labels"] * len(ids))
    obs.index = [f"cell_{i}" for i in range(len(ids))]
    tissue.obs = obs
    # the centre of each cell's seed pixel, in µm (a pixel's centre is at index + 0.5)
    tissue.obsm["spatial"] = np.column_stack([ox + (rc[:, 1] + 0.5) * pixel_size, oy + (rc[:, 0] + 0.5) * pixel_size])
    tissue.uns.pop("spatial", None)
    tissue.uns["true_label_colors"] = list(REGION_COLORS)
    tissue.uns.pop("region_colors", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = Image2DModel.parse(image, dims=("c", "y", "x"), c_coords=["DAPI", "membrane"], scale_factors=[2, 2],
                                 transformations={"global": to_um}, chunks=(1, 512, 512))
        mask = Labels2DModel.parse(labels, dims=("y", "x"), scale_factors=[2, 2],
                                   transformations={"global": to_um}, chunks=(512, 512))
        table = TableModel.parse(tissue, region="cell_labels", region_key="region", instance_key="cell_id")
        return sd.SpatialData(images={"morphology": img}, labels={"cell_labels": mask}, tables={"table": table})
