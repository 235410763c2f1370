"""Validated access to an AnnData's labels and expression matrix.

Everything that reads user input for training goes through here, so every bad input gets the
same clear message: the missing key, the wrong shape, the empty class.  The expression matrix
is never densified as a whole: :class:`RowSource` hands out dense float32 batches of rows,
gathered from a dense array or streamed from a sparse CSR matrix.
"""

from __future__ import annotations

import difflib
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from .errors import AnnotatabilityInputError, RawCountsWarning

__all__ = ["get_labels", "get_matrix", "RowSource", "looks_like_counts", "resolve_device"]


def _suggest(key: str, options) -> str:
    close = difflib.get_close_matches(str(key), [str(o) for o in options], n=3)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def get_labels(adata, key: str, *, min_classes: int = 2) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and class names of ``adata.obs[key]``.

    Raises :class:`AnnotatabilityInputError` for a missing column, missing labels (NaN),
    or fewer than ``min_classes`` distinct labels.  Unused categories are dropped.
    """
    if adata.n_obs == 0:
        raise AnnotatabilityInputError("the AnnData has no cells (n_obs == 0)")
    if key not in adata.obs.columns:
        cols = list(adata.obs.columns)
        listing = ", ".join(repr(c) for c in cols[:20]) + (" ..." if len(cols) > 20 else "")
        raise AnnotatabilityInputError(
            f"label column {key!r} is not in adata.obs.{_suggest(key, cols)} "
            f"Available columns: {listing or '(none)'}"
        )
    col = adata.obs[key]
    n_missing = int(col.isna().sum())
    if n_missing:
        raise AnnotatabilityInputError(
            f"{n_missing} of {adata.n_obs} cells have no label (NaN) in obs[{key!r}]; "
            "drop or fill them before training"
        )
    cat = col.astype("category") if not isinstance(col.dtype, pd.CategoricalDtype) else col
    cat = cat.cat.remove_unused_categories()
    classes = cat.cat.categories
    if len(classes) < min_classes:
        raise AnnotatabilityInputError(
            f"obs[{key!r}] has {len(classes)} distinct label(s) ({', '.join(map(str, classes))}); "
            f"training needs at least {min_classes}"
        )
    return cat.cat.codes.to_numpy().astype(np.int64), pd.Index(classes)


def get_matrix(adata, layer: str | None = None):
    """``adata.X`` or ``adata.layers[layer]``, checked for shape, emptiness and finiteness."""
    if layer is None:
        X = adata.X
        where = "adata.X"
    else:
        if layer not in adata.layers:
            raise AnnotatabilityInputError(
                f"layer {layer!r} is not in adata.layers.{_suggest(layer, adata.layers.keys())} "
                f"Available layers: {', '.join(map(repr, adata.layers.keys())) or '(none)'}"
            )
        X = adata.layers[layer]
        where = f"adata.layers[{layer!r}]"
    if X is None:
        raise AnnotatabilityInputError(f"{where} is empty (None)")
    if X.ndim != 2 or X.shape[0] != adata.n_obs:
        raise AnnotatabilityInputError(f"{where} has shape {X.shape}, expected ({adata.n_obs}, n_features)")
    if X.shape[1] == 0:
        raise AnnotatabilityInputError(f"{where} has no features (0 columns)")
    if sp.issparse(X):
        if X.format not in ("csr", "csc"):
            X = X.tocsr()
        if not np.isfinite(X.data).all():
            raise AnnotatabilityInputError(f"{where} contains NaN or infinite values")
    else:
        X = np.asarray(X)
        if not np.issubdtype(X.dtype, np.number):
            raise AnnotatabilityInputError(f"{where} has non-numeric dtype {X.dtype}")
        step = max(1, 2**24 // max(1, X.shape[1]))
        for start in range(0, X.shape[0], step):
            if not np.isfinite(X[start : start + step]).all():
                raise AnnotatabilityInputError(f"{where} contains NaN or infinite values")
    return X


def looks_like_counts(X, *, n_rows: int = 500) -> bool:
    """True when a sample of rows holds only non-negative integers, not all 0/1.

    That is what unnormalised counts look like; log-normalised or scaled data fails it, and so
    does a binary (presence/absence) matrix.
    """
    rows = X[: min(n_rows, X.shape[0])]
    vals = rows.data if sp.issparse(rows) else np.asarray(rows).ravel()
    if vals.size == 0:
        return False
    return bool(vals.min() >= 0 and vals.max() >= 2 and np.all(np.mod(vals, 1) == 0))


def warn_if_counts(X, where: str = "adata.X") -> None:
    if looks_like_counts(X):
        warnings.warn(
            f"{where} looks like raw counts (non-negative integers). The method expects "
            "log-normalised data with a few thousand highly variable genes: call "
            "napari_annotatability.core.preprocess(adata) first (CLI: --preprocess).",
            RawCountsWarning,
            stacklevel=3,
        )


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise AnnotatabilityInputError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'mps'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise AnnotatabilityInputError("device 'cuda' was requested but torch sees no CUDA GPU; use 'auto' or 'cpu'")
    return dev


class RowSource:
    """Dense float32 batches of rows of a dense or sparse matrix, on a torch device.

    Dense float32 C-ordered input is shared, not copied; other dense input is converted to
    float32 once.  Sparse input stays sparse (CSC is converted to CSR once, to gather rows);
    only the requested rows are densified.  Both paths hand the model bit-identical batches,
    so sparse and dense X give the same scores.
    """

    def __init__(self, X, device: torch.device) -> None:
        self.device = device
        self.sparse = sp.issparse(X)
        if self.sparse:
            X = X.tocsr() if X.format != "csr" else X
            if X.dtype != np.float32:
                X = X.astype(np.float32)
            self._X = X
        else:
            arr = np.ascontiguousarray(X, dtype=np.float32)
            self._X = torch.from_numpy(arr).to(device)
        self.n_obs, self.n_vars = X.shape
        self._bufs: dict[int, torch.Tensor] = {}

    # Batches are written into persistent buffers, one per batch size: a fresh multi-megabyte
    # allocation per batch costs page faults that take longer than the copy itself.  Both paths
    # hand the model buffers of the same alignment (BLAS results can depend on alignment).  A
    # returned batch is valid until the next call with the same batch size.
    def _buffer(self, n_rows: int) -> torch.Tensor:
        buf = self._bufs.get(n_rows)
        if buf is None:
            buf = self._bufs[n_rows] = torch.empty((n_rows, self.n_vars), dtype=torch.float32)
        return buf

    def _densify(self, block) -> torch.Tensor:
        buf = self._buffer(block.shape[0])
        arr = buf.numpy()
        arr.fill(0.0)
        block.toarray(out=arr)  # scipy accumulates into ``out``
        return buf if self.device.type == "cpu" else buf.to(self.device, non_blocking=True)

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` (a CPU int64 tensor) as a dense float32 tensor."""
        if self.sparse:
            return self._densify(self._X[idx.numpy()])
        if self._X.device.type != "cpu":
            return self._X.index_select(0, idx.to(self._X.device))
        return torch.index_select(self._X, 0, idx, out=self._buffer(idx.shape[0]))

    def slice(self, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` as a dense float32 tensor."""
        if self.sparse:
            X = self._X
            lo, hi = X.indptr[start], X.indptr[stop]
            rows = sp.csr_matrix(  # a zero-copy view of the rows (slicing a CSR copies them)
                (X.data[lo:hi], X.indices[lo:hi], X.indptr[start : stop + 1] - lo),
                shape=(stop - start, self.n_vars),
            )
            return self._densify(rows)
        if self._X.device.type != "cpu":
            return self._X[start:stop].clone()
        return self._buffer(stop - start).copy_(self._X[start:stop])
