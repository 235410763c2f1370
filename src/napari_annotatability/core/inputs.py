"""What kind of numbers the network is given, and how they are brought to one scale.

The classifier is trained with plain SGD, whose stable step size depends on the scale of its
input: raw counts (values up to 10^4-10^5, mean squared row norm ~10^8) make the published
learning rate diverge, while a panel of log intensities trains, but slower than on standardised
features.  This module

* **detects the kind of input** from a seeded sample of rows (:func:`detect_kind`):
  ``"counts"`` (non-negative integers, not all 0/1), ``"binary"`` (0/1), ``"log-normalised"``
  (non-negative, non-integer, modest values), ``"intensities"`` (non-negative, non-integer,
  large values or a heavy right tail) or ``"scaled"`` (has negative values: z-scores, PCA, ...);
* **plans a transform** for it (:func:`resolve_input`, defaults in :data:`DEFAULT_STEPS` and
  :data:`DEFAULT_STANDARDIZE`): per-cell normalisation to ``TARGET_SUM``, ``log1p``, a subset of
  ``N_TOP_GENES`` highly variable genes for counts, per-feature standardisation for the others;
* **applies it on the fly** to every batch the network sees (:class:`InputTransform`, hooked
  into :class:`~._data.RowSource` by :func:`make_source`): the AnnData is only read, its matrix
  is never copied whole nor modified, and on-disk (backed) matrices keep streaming.

The plan is a plain dict stored in ``uns['annotatability']['params']['input']``; every later
training of the same analysis (cross-fitting, calibration, label correction) rebuilds the same
transform from it.  ``input="as-is"`` opts out: the network then sees the matrix unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import torch

from ._data import BackedMatrix, RowSource, get_matrix, warn_if_counts
from .errors import AnnotatabilityInputError, RawCountsWarning

__all__ = [
    "KINDS", "INPUT_MODES", "DEFAULT_STEPS", "DEFAULT_STANDARDIZE", "TARGET_SUM", "N_TOP_GENES", "HVG_MAX_CELLS",
    "DETECT_VALUES", "DETECT_ROWS", "STATS_ROWS", "CLIP", "MATERIALISE_BYTES", "MATERIALISE_BACKED_BYTES",
    "INTENSITY_MAX", "TAIL_RATIO",
    "detect_kind", "resolve_input", "InputTransform", "build_transform", "make_source", "gene_matrix",
]

KINDS = ("counts", "binary", "log-normalised", "intensities", "scaled")
INPUT_MODES = ("auto", "as-is")

#: what ``input="auto"`` does to each kind of input, in this order (``standardize`` comes last,
#: see :data:`DEFAULT_STANDARDIZE`).  ``highly_variable_genes`` applies only with more than
#: ``N_TOP_GENES`` features.
DEFAULT_STEPS: dict[str, tuple[str, ...]] = {
    "counts": ("normalize_total", "log1p", "highly_variable_genes"),
    "binary": (),
    "log-normalised": (),
    "intensities": ("log1p",),
    "scaled": (),
}
#: Intensities get ``log1p`` rather than ``arcsinh(x / c)``: on non-negative values both are
#: logarithmic for large x (``arcsinh(x) = log(2x) + O(1/x^2)``) and near-linear close to 0, so
#: after standardisation they differ only in where the bend sits; arcsinh earns its keep on the
#: negative values of background-subtracted cytometry, which are detected as "scaled" and not
#: transformed.  ``log1p`` needs no cofactor to choose, is the transform of the expression
#: pipelines, and ``expm1`` undoes it.
#:
#: whether ``input="auto"`` standardises each kind's features (``standardize=None``).  Raw counts
#: are not: once normalised and ``log1p``-ed they are on the scale expression pipelines use, and
#: standardising their 2 000 genes lifts rare, noisy genes to the weight of markers (measured
#: leaving one dataset out, ``benchmarks/bench_label_quality.py`` candidate ``std-counts``: 199
#: T cells 0.630 standardised vs 0.754 not, the three DLPFC sections within 0.01 either way).
DEFAULT_STANDARDIZE: dict[str, bool] = {
    "counts": False, "binary": True, "log-normalised": True, "intensities": True, "scaled": True,
}
#: counts per cell after normalisation (as ``scanpy.pp.normalize_total(target_sum=1e4)``)
TARGET_SUM = 1e4
#: highly variable genes kept from counts with more genes than this (``flavor='seurat'``)
N_TOP_GENES = 2000
#: highly variable genes are chosen on a seeded sample of at most this many cells
HVG_MAX_CELLS = 50_000
#: the kind is detected on a seeded sample of at most ``DETECT_ROWS`` rows and about
#: ``DETECT_VALUES`` matrix entries
DETECT_ROWS, DETECT_VALUES = 1000, 4_000_000
#: feature means and standard deviations come from a seeded sample of at most this many rows
STATS_ROWS = 20_000
#: a transformed input of at most this many bytes (dense float32) is computed once and kept;
#: larger inputs are transformed a batch at a time
MATERIALISE_BYTES = 256 * 2**20
#: the same for an on-disk (backed) input, kept small: backed mode is chosen to bound memory by
#: the batch, and a 100 000 x 500 file would otherwise be held whole (200 MB) in memory
MATERIALISE_BACKED_BYTES = 32 * 2**20
#: standardised values are clipped to +-CLIP (as ``scanpy.pp.scale(max_value=10)``)
CLIP = 10.0
#: non-integer, non-negative input is "intensities" when its largest value exceeds
#: ``INTENSITY_MAX`` (log-normalised expression stays below ~10) or when the 99.9th percentile
#: of its non-zero values is more than ``TAIL_RATIO`` times their median (a heavy right tail)
INTENSITY_MAX = 100.0
TAIL_RATIO = 50.0

_STEP_NAMES = ("normalize_total", "log1p", "highly_variable_genes", "standardize")


# -- detection ------------------------------------------------------------------------------
def _sample_rows(n: int, k: int, seed: int) -> np.ndarray:
    """Sorted seeded sample of ``min(n, k)`` row indices (all rows when ``n <= k``)."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def _rows(X, rows: np.ndarray):
    """Rows ``rows`` (sorted) of a dense, sparse or on-disk matrix."""
    if isinstance(X, BackedMatrix):
        return X.rows(rows)
    if rows.size == X.shape[0] and (rows.size == 0 or rows[-1] == rows.size - 1):
        return X
    return X[rows]


def detect_kind(X, *, seed: int = 0) -> tuple[str, dict]:
    """The kind of numbers in ``X``, judged from a seeded sample of its rows.

    Parameters
    ----------
    X
        Dense array, scipy sparse matrix or :class:`~._data.BackedMatrix`.
    seed
        Seeds the row sample.

    Returns
    -------
    kind
        One of :data:`KINDS`: ``"scaled"`` (some value < 0), ``"counts"`` (non-negative
        integers with a value >= 2), ``"binary"`` (only 0 and 1), ``"intensities"``
        (non-negative, non-integer, max > ``INTENSITY_MAX`` or a heavy right tail) or
        ``"log-normalised"`` (the rest: non-negative, non-integer, modest values).
    stats
        What the decision rests on (plain numbers, h5ad-writable): ``n_rows`` sampled, ``min``,
        ``max``, ``integer``, ``fraction_nonzero``, ``nonzero_median``, ``nonzero_q999``,
        ``tail_ratio`` and ``mean_square_norm`` (mean squared row norm of the sample).
    """
    n, g = X.shape
    k = max(1, min(DETECT_ROWS, DETECT_VALUES // max(1, g)))
    rows = _rows(X, _sample_rows(n, k, seed))
    if sp.issparse(rows):
        vals = np.asarray(rows.data)
        sq = float(np.square(vals, dtype=np.float64).sum())
        n_entries = rows.shape[0] * g
    else:
        vals = np.asarray(rows).ravel()
        sq = float(np.square(vals, dtype=np.float64).sum())
        n_entries = vals.size
    nz = vals[vals != 0]
    n_rows = int(rows.shape[0])
    vmin = float(vals.min()) if vals.size else 0.0
    vmax = float(vals.max()) if vals.size else 0.0
    if vals.size < n_entries:  # the implicit zeros of a sparse matrix
        vmin, vmax = min(vmin, 0.0), max(vmax, 0.0)
    integer = bool(np.all(np.mod(nz, 1) == 0))
    med = float(np.median(np.abs(nz))) if nz.size else 0.0
    q999 = float(np.quantile(np.abs(nz), 0.999)) if nz.size else 0.0
    tail = q999 / med if med > 0 else 0.0
    stats = {
        "n_rows": n_rows, "min": vmin, "max": vmax, "integer": integer,
        "fraction_nonzero": float(nz.size / max(1, n_entries)), "nonzero_median": med, "nonzero_q999": q999,
        "tail_ratio": float(tail), "mean_square_norm": sq / max(1, n_rows),
    }
    if vmin < 0:
        kind = "scaled"
    elif integer and vmax >= 2:
        kind = "counts"
    elif integer and vmax == 1:
        kind = "binary"
    elif vmax > INTENSITY_MAX or tail > TAIL_RATIO:
        kind = "intensities"
    else:
        kind = "log-normalised"
    return kind, stats


# -- planning -------------------------------------------------------------------------------
def _plain(value):
    """Numpy scalars/arrays (as an h5ad round trip returns them) as plain Python values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _select_hvg(X, n_top: int, target_sum: float, seed: int) -> np.ndarray:
    """Column indices of ``n_top`` highly variable genes (scanpy ``flavor='seurat'``).

    Chosen, as :func:`~.preprocess.preprocess` does, on normalised + log1p expression -- of a
    seeded sample of at most ``HVG_MAX_CELLS`` cells; only that sample is ever copied.
    """
    import anndata as ad
    import scanpy as sc

    rows = _rows(X, _sample_rows(X.shape[0], HVG_MAX_CELLS, seed))
    sub = rows.astype(np.float32) if sp.issparse(rows) else np.array(rows, dtype=np.float32)
    if sp.issparse(sub):
        sub = sub.tocsr()
    a = ad.AnnData(sub)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.normalize_total(a, target_sum=target_sum)
        sc.pp.log1p(a)
        sc.pp.highly_variable_genes(a, n_top_genes=n_top, flavor="seurat")
    return np.flatnonzero(a.var["highly_variable"].to_numpy()).astype(np.int64)


def resolve_input(
    X,
    var_names=None,
    input="auto",
    *,
    standardize: bool | None = None,
    seed: int = 0,
) -> dict:
    """The input plan for ``X``: its kind, the statistics that decided it, and the steps.

    Parameters
    ----------
    X
        The expression matrix (dense, sparse or :class:`~._data.BackedMatrix`).
    var_names
        Feature names (recorded for highly variable genes); default ``0 .. n-1``.
    input
        ``"auto"``: the steps of :data:`DEFAULT_STEPS` for the detected kind; ``"as-is"``: no
        step (the kind is still detected and recorded).  A plan returned earlier (a dict, e.g.
        read back from ``uns``) is checked against ``X`` and returned as plain values.
    standardize
        Standardise every feature (mean 0, std 1 on a seeded sample, clipped to +-``CLIP``).
        None: the kind's default (:data:`DEFAULT_STANDARDIZE`) with ``"auto"``, no with
        ``"as-is"``.
    seed
        Seeds the row samples (detection, gene selection, feature statistics).

    Returns
    -------
    dict
        ``mode``, ``kind``, ``stats``, ``steps`` (in order), ``standardize``, ``n_features_in``,
        ``n_features``, ``sample_seed``, and where they apply ``target_sum``, ``n_top_genes``,
        ``genes`` and ``gene_indices`` (the highly variable genes), ``clip``.  Plain values
        only, so it can be stored in ``uns`` and written to ``.h5ad``.
    """
    if isinstance(input, Mapping):
        return _check_plan(_plain(input), X, var_names)
    if input not in INPUT_MODES:
        raise AnnotatabilityInputError(f"input must be 'auto' or 'as-is' (or a stored input plan), got {input!r}")
    if standardize is not None and not isinstance(standardize, (bool, np.bool_)):
        raise AnnotatabilityInputError(f"standardize must be True, False or None, got {standardize!r}")
    seed = int(seed) if isinstance(seed, (int, np.integer)) and seed >= 0 else 0
    kind, stats = detect_kind(X, seed=seed)
    n_in = int(X.shape[1])
    steps = list(DEFAULT_STEPS[kind]) if input == "auto" else []
    std = bool(DEFAULT_STANDARDIZE[kind] if input == "auto" else False) if standardize is None else bool(standardize)
    plan: dict = {"mode": input, "kind": kind, "stats": stats, "sample_seed": seed, "n_features_in": n_in}
    if "highly_variable_genes" in steps and n_in <= N_TOP_GENES:
        steps.remove("highly_variable_genes")
    if "normalize_total" in steps:
        plan["target_sum"] = float(TARGET_SUM)
    if "highly_variable_genes" in steps:
        cols = _select_hvg(X, N_TOP_GENES, TARGET_SUM, seed)
        names = np.asarray(var_names if var_names is not None else np.arange(n_in)).astype(str)
        plan.update(n_top_genes=int(N_TOP_GENES), gene_indices=[int(c) for c in cols],
                    genes=[str(names[c]) for c in cols])
    if std:
        steps.append("standardize")
        plan["clip"] = float(CLIP)
    plan["steps"] = steps
    plan["standardize"] = std
    plan["n_features"] = len(plan["gene_indices"]) if "gene_indices" in plan else n_in
    return plan


def _check_plan(plan: dict, X, var_names) -> dict:
    """A stored plan, checked against the matrix it is applied to; HVG indices re-resolved."""
    steps = [str(s) for s in plan.get("steps", [])]
    unknown = [s for s in steps if s not in _STEP_NAMES]
    if unknown or "kind" not in plan:
        raise AnnotatabilityInputError(f"not an input plan (unknown steps {unknown}, or no 'kind'): {plan!r}")
    n_in = int(plan.get("n_features_in", X.shape[1]))
    if n_in != X.shape[1]:
        raise AnnotatabilityInputError(
            f"the stored input plan is for {n_in} features, the matrix has {X.shape[1]}: train again "
            "(input='auto') on this data"
        )
    plan["steps"] = steps
    if "highly_variable_genes" in steps:
        idx = np.asarray(plan.get("gene_indices", []), dtype=np.int64)
        names = [str(g) for g in plan.get("genes", [])]
        if var_names is not None and len(names) == idx.size and idx.size:
            vn = np.asarray(var_names).astype(str)
            if not np.array_equal(vn[idx], np.asarray(names)):
                import pandas as pd

                vn_index = pd.Index(vn)
                pos = vn_index.get_indexer(names) if vn_index.is_unique else np.full(len(names), -1)
                if (pos < 0).any():
                    raise AnnotatabilityInputError(
                        "the stored highly variable genes are not all in var_names: train again on this data"
                    )
                idx = pos.astype(np.int64)
        if idx.size == 0:
            raise AnnotatabilityInputError("the stored input plan selects genes but lists none")
        plan["gene_indices"] = [int(i) for i in idx]
    plan["standardize"] = bool(plan.get("standardize", "standardize" in steps))
    return plan


# -- the transform --------------------------------------------------------------------------
def _row_sums(X, chunk: int = 8192) -> np.ndarray:
    """Row sums of all columns, in float64 (exact for counts), read a block of rows at a time."""
    n = X.shape[0]
    if isinstance(X, BackedMatrix):
        return np.concatenate([np.asarray(b.sum(axis=1), dtype=np.float64).ravel() for _, b in X.iter_blocks(chunk)])
    if sp.issparse(X) and X.format != "csr":
        return np.asarray(X.sum(axis=1, dtype=np.float64)).ravel()
    out = np.empty(n, dtype=np.float64)
    for s in range(0, n, chunk):
        block = X[s : s + chunk]
        out[s : s + chunk] = np.asarray(block.sum(axis=1, dtype=np.float64)).ravel()
    return out


def _size_factors(X, target_sum: float, dtype=np.float32) -> np.ndarray:
    """``target_sum / counts`` per cell (1 for a cell without counts: it stays all zeros)."""
    sums = _row_sums(X)
    with np.errstate(divide="ignore"):
        f = np.where(sums > 0, target_sum / np.where(sums > 0, sums, 1.0), 1.0)
    return f.astype(dtype)


class InputTransform:
    """The input plan's steps, applied in place to dense float32 batches of rows.

    A :class:`~._data.RowSource` given this transform reads only the selected ``columns``
    and calls :meth:`apply_` on every batch, with the batch's row indices: rows are scaled
    by their precomputed size factor (``normalize_total``), then ``log1p``, then each
    feature is centred and divided by its standard deviation and clipped (``standardize``).

    Parameters
    ----------
    size_factors
        Per-cell factor (``target_sum / counts``), float32, or None.
    columns
        Column indices to keep (sorted), or None for all.
    log1p
        Apply ``log1p``.
    device
        Where the batches live.
    """

    def __init__(self, size_factors: np.ndarray | None, columns: np.ndarray | None, log1p: bool,
                 device: torch.device) -> None:
        self.device = torch.device(device)
        self.columns = None if columns is None else np.asarray(columns, dtype=np.int64)
        self._sf = None if size_factors is None else torch.from_numpy(np.asarray(size_factors, dtype=np.float32))
        self._sf_dev = None if self._sf is None else self._sf.to(self.device)
        self.log1p = bool(log1p)
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None
        self.clip: float | None = None

    def set_standardization(self, mean: np.ndarray, std: np.ndarray, clip: float | None) -> None:
        """Centre on ``mean``, divide by ``std`` (float64 statistics, kept as float32), clip."""
        self.mean = torch.from_numpy(np.asarray(mean, dtype=np.float32)).to(self.device)
        self.std = torch.from_numpy(np.asarray(std, dtype=np.float32)).to(self.device)
        self.clip = None if clip is None else float(clip)

    def apply_(self, batch: torch.Tensor, rows) -> torch.Tensor:
        """Transform ``batch`` (rows ``rows``: a CPU int64 tensor or a slice) in place."""
        if self._sf is not None:
            if isinstance(rows, slice):
                f = self._sf_dev[rows]
            elif batch.device.type == "cpu":
                f = self._sf.index_select(0, rows)
            else:
                f = self._sf_dev.index_select(0, rows.to(batch.device))
            batch.mul_(f.unsqueeze(1))
        if self.log1p:
            batch.log1p_()
        if self.mean is not None:
            batch.sub_(self.mean).div_(self.std)
            if self.clip is not None:
                batch.clamp_(-self.clip, self.clip)
        return batch


def _feature_stats(source: RowSource, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (ddof=1, as ``scanpy.pp.scale``) of each feature the source gives.

    From a seeded sample of at most ``STATS_ROWS`` rows, accumulated in float64 around the
    first sampled row, so that a constant feature has a variance of exactly 0 (it gets std 1).
    """
    rows = _sample_rows(source.n_obs, STATS_ROWS, seed)
    step = max(1, min(4096, 2**22 // max(1, source.n_vars)))
    shift = s1 = s2 = None
    for s in range(0, rows.size, step):
        xb = source.take(torch.from_numpy(rows[s : s + step])).cpu().numpy().astype(np.float64)
        if shift is None:
            shift = xb[0].copy()
            s1 = np.zeros_like(shift)
            s2 = np.zeros_like(shift)
        xb -= shift
        s1 += xb.sum(axis=0)
        s2 += np.square(xb).sum(axis=0)
    n = rows.size
    m = s1 / n
    var = np.maximum(s2 / n - m * m, 0.0)
    if n > 1:
        var *= n / (n - 1)
    std = np.sqrt(var)
    std[std == 0] = 1.0
    return shift + m, std


def build_transform(X, plan: dict, device: torch.device) -> RowSource:
    """A :class:`~._data.RowSource` over ``X`` that hands out batches transformed by ``plan``.

    ``plan`` is what :func:`resolve_input` returns.  Size factors come from the row sums of all
    columns; feature statistics from the source itself (the data after the earlier steps).
    """
    steps = plan["steps"]
    if not steps:
        return RowSource(X, device)
    sf = _size_factors(X, float(plan["target_sum"])) if "normalize_total" in steps else None
    cols = np.asarray(plan["gene_indices"], dtype=np.int64) if "highly_variable_genes" in steps else None
    tf = InputTransform(sf, cols, "log1p" in steps, device)
    source = RowSource(X, device, transform=tf)
    if "standardize" in steps:
        mean, std = _feature_stats(source, int(plan.get("sample_seed", 0)))
        tf.set_standardization(mean, std, plan.get("clip", CLIP))
    limit = MATERIALISE_BACKED_BYTES if isinstance(X, BackedMatrix) else MATERIALISE_BYTES
    if source.n_obs * source.n_vars * 4 <= limit:
        # small data: transform once instead of every batch of every epoch; a few hundred cells
        # paid ~30 % of their training time here.  Transformed values do not depend on the batch
        # (tested: a streamed backed input scores as the same input transformed once in memory)
        dense = np.empty((source.n_obs, source.n_vars), dtype=np.float32)
        step = max(1, 2**22 // max(1, source.n_vars))
        for s in range(0, source.n_obs, step):
            e = min(source.n_obs, s + step)
            dense[s:e] = source.slice(s, e).cpu().numpy()
        return RowSource(dense, device)
    return source


def _describe(plan: dict) -> str:
    words = {"normalize_total": f"normalised each cell to {plan.get('target_sum', TARGET_SUM):g} counts",
             "log1p": "log1p",
             "highly_variable_genes": f"kept {len(plan.get('gene_indices', []))} highly variable genes",
             "standardize": f"standardised every feature (clipped to +-{plan.get('clip', CLIP):g})"}
    return ", ".join(words[s] for s in plan["steps"])


def make_source(
    adata,
    layer: str | None = None,
    device: torch.device | str = "cpu",
    input="auto",
    *,
    standardize: bool | None = None,
    seed: int = 0,
    X=None,
) -> tuple[RowSource, dict]:
    """The batches the network trains on, and the input plan that made them.

    Every training of the package builds its :class:`~._data.RowSource` here, so the first
    training (``input="auto"``: detect and plan) and the later ones of the same analysis (the
    stored plan) see the same transformed input.

    Parameters
    ----------
    adata
        The AnnData (only read).
    layer
        ``adata.layers[layer]`` instead of ``X``.
    device
        A torch device.
    input
        ``"auto"``, ``"as-is"`` or a plan from :func:`resolve_input` (e.g.
        ``uns['annotatability']['params']['input']``).
    standardize
        See :func:`resolve_input` (ignored for a stored plan).
    seed
        Seeds the row samples of a new plan.
    X
        The matrix, when the caller has it from :func:`~._data.get_matrix` already.

    Returns
    -------
    source, plan
    """
    if X is None:
        X = get_matrix(adata, layer)
    device = torch.device(device) if not isinstance(device, torch.device) else device
    fresh = not isinstance(input, Mapping)
    plan = resolve_input(X, adata.var_names, input, standardize=standardize, seed=seed)
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    if fresh and plan["mode"] == "as-is":
        warn_if_counts(X, where)
    elif fresh and plan["kind"] == "counts" and plan["steps"]:
        warnings.warn(
            f"{where} looks like raw counts (non-negative integers, max {plan['stats']['max']:g}). input='auto' "
            f"trains on a transformed copy of each batch ({_describe(plan)}); {where} is left unchanged. "
            "Pass input='as-is' (CLI: --input as-is) to train on the counts themselves, or normalise them "
            "first (napari_annotatability.core.preprocess(adata); CLI: --preprocess).",
            RawCountsWarning,
            stacklevel=4,
        )
    return build_transform(X, plan, device), plan


# -- expression for gene association ---------------------------------------------------------
class _TransformedRows(BackedMatrix):
    """Rows of a matrix, normalised per cell and/or log1p'd a block at a time (never whole).

    Quacks like a :class:`~._data.BackedMatrix` (``block``, ``rows``, ``iter_blocks``), which
    :func:`~.genes.gene_scores` reads block by block; blocks are float64.
    """

    def __init__(self, X, size_factors: np.ndarray | None, log1p: bool) -> None:  # noqa: D107
        if sp.issparse(X) and X.format != "csr":
            X = X.tocsr()
        self._src = X
        self._sf = size_factors
        self._log1p = log1p
        self.shape = tuple(int(d) for d in X.shape)
        self.ndim = 2
        self.dtype = np.dtype(np.float64)
        src_sparse = X.sparse if isinstance(X, BackedMatrix) else sp.issparse(X)
        self.kind = "csr" if src_sparse else "dense"
        self.format = "csr" if src_sparse else None

    def _apply(self, block, f: np.ndarray | None):
        if sp.issparse(block):
            block = block.astype(np.float64)
            if f is not None:
                block.data *= np.repeat(f, np.diff(block.indptr))
            if self._log1p:
                np.log1p(block.data, out=block.data)
            return block
        block = np.array(block, dtype=np.float64)
        if f is not None:
            block *= f[:, None]
        if self._log1p:
            np.log1p(block, out=block)
        return block

    def block(self, start: int, stop: int):
        start, stop = max(0, int(start)), min(self.shape[0], int(stop))
        X = self._src
        b = X.block(start, stop) if isinstance(X, BackedMatrix) else X[start:stop]
        return self._apply(b, None if self._sf is None else self._sf[start:stop])

    def rows(self, idx: np.ndarray):
        idx = np.asarray(idx, dtype=np.int64)
        X = self._src
        b = X.rows(idx) if isinstance(X, BackedMatrix) else X[idx]
        return self._apply(b, None if self._sf is None else self._sf[idx])

    def all_finite(self, chunk: int = 2**22) -> bool:  # pragma: no cover - the source was checked
        return True


def gene_matrix(adata, layer: str | None = None, input=None):
    """The expression to correlate genes with: log-normalised, all genes, not standardised.

    Raw counts become ``log1p`` of counts normalised to ``TARGET_SUM`` per cell, intensities
    ``log1p`` of themselves; other kinds, and ``input="as-is"``, are returned unchanged.
    Nothing is copied whole: the returned matrix transforms a block of rows at a time.

    Parameters
    ----------
    adata
        The AnnData (only read).
    layer
        ``adata.layers[layer]`` instead of ``X``.
    input
        The training's input plan (``uns['annotatability']['params']['input']``), ``"auto"``,
        ``"as-is"``, or None (``"auto"``).

    Returns
    -------
    A dense or sparse matrix, or a block-wise transformed view of it, for
    :func:`~.genes.gene_scores`.
    """
    X = get_matrix(adata, layer)
    if input is None:
        input = "auto"
    if isinstance(input, Mapping):
        mode, kind = str(input.get("mode", "auto")), str(input.get("kind", ""))
        steps = [str(s) for s in _plain(input.get("steps", []))]
        target_sum = float(input.get("target_sum", TARGET_SUM))
    elif input in INPUT_MODES:
        mode = input
        kind = detect_kind(X)[0]
        steps = list(DEFAULT_STEPS[kind])
        target_sum = TARGET_SUM
    else:
        raise AnnotatabilityInputError(f"input must be 'auto' or 'as-is' (or a stored input plan), got {input!r}")
    if mode == "as-is":
        return X
    normalise, log1p = "normalize_total" in steps, "log1p" in steps
    if not (normalise or log1p):
        return X
    sf = _size_factors(X, target_sum, np.float64) if normalise else None
    return _TransformedRows(X, sf, log1p)
