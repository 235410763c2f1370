"""Validated access to an AnnData's labels and expression matrix.

Everything that reads user input for training goes through here, so every bad input gets the
same clear message: the missing key, the wrong shape, the empty class.  The expression matrix
is never densified as a whole: :class:`RowSource` hands out dense float32 batches of rows,
gathered from a dense array or streamed from a sparse CSR matrix -- in memory, or on disk when
the AnnData was opened with ``anndata.read_h5ad(path, backed="r")`` (:class:`BackedMatrix`).
"""

from __future__ import annotations

import difflib
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from .errors import AnnotatabilityInputError, RawCountsWarning
from .labels import annotation_problem

__all__ = ["get_labels", "get_matrix", "RowSource", "BackedMatrix", "looks_like_counts", "resolve_device"]


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
    problem = annotation_problem(adata.obs, key, min_classes=min_classes)  # the widget offers by the same rule
    if problem is not None:
        raise AnnotatabilityInputError(problem)
    cat = col.astype("category") if not isinstance(col.dtype, pd.CategoricalDtype) else col
    cat = cat.cat.remove_unused_categories()
    classes = cat.cat.categories
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
    backed = _backed_kind(X)
    if backed is not None:
        if backed == "csc":
            raise AnnotatabilityInputError(
                f"{where} is stored on disk as CSC (by gene); streaming needs rows (CSR). Open the file "
                "without backed='r', or rewrite X as CSR"
            )
        X = BackedMatrix(X, backed)
    if X.ndim != 2 or X.shape[0] != adata.n_obs:
        raise AnnotatabilityInputError(f"{where} has shape {X.shape}, expected ({adata.n_obs}, n_features)")
    if X.shape[1] == 0:
        raise AnnotatabilityInputError(f"{where} has no features (0 columns)")
    if isinstance(X, BackedMatrix):
        if not np.issubdtype(X.dtype, np.number):
            raise AnnotatabilityInputError(f"{where} has non-numeric dtype {X.dtype}")
        if not X.all_finite():
            raise AnnotatabilityInputError(f"{where} contains NaN or infinite values")
    elif sp.issparse(X):
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


def _backed_kind(X) -> str | None:
    """``"csr"``, ``"csc"`` or ``"dense"`` for an on-disk X of a backed AnnData, else None."""
    try:
        from anndata.abc import CSCDataset, CSRDataset
    except ImportError:  # anndata < 0.10
        return None
    if isinstance(X, CSRDataset):
        return "csr"
    if isinstance(X, CSCDataset):
        return "csc"
    import h5py

    return "dense" if isinstance(X, h5py.Dataset) else None


class BackedMatrix:
    """Rows of an on-disk X (a backed AnnData's CSR or dense matrix), read piece by piece.

    Holds only the CSR row pointers in memory (8 bytes per cell); ``block`` reads a contiguous
    row range with one read per array, ``rows`` an arbitrary set of rows (the rows of a
    training batch), reading each run of consecutive rows once.  Both return scipy CSR (dense
    ``numpy`` arrays for a dense X), so everything downstream sees what an in-memory X gives.
    """

    def __init__(self, X, kind: str) -> None:
        self.kind = kind
        self.shape = tuple(int(d) for d in X.shape)
        self.ndim = 2
        if kind == "csr":
            group = X.group
            self._data, self._indices = group["data"], group["indices"]
            self._indptr = np.asarray(group["indptr"][...], dtype=np.int64)
            self.dtype = self._data.dtype
            self.format = "csr"
        else:
            self._ds = X
            self.dtype = X.dtype

    @property
    def sparse(self) -> bool:
        return self.kind == "csr"

    def block(self, start: int, stop: int):
        """Rows ``start:stop``."""
        start, stop = max(0, int(start)), min(self.shape[0], int(stop))
        if not self.sparse:
            return np.asarray(self._ds[start:stop])
        lo, hi = self._indptr[start], self._indptr[stop]
        return sp.csr_matrix(
            (self._data[lo:hi], self._indices[lo:hi], self._indptr[start : stop + 1] - lo),
            shape=(stop - start, self.shape[1]),
        )

    def rows(self, idx: np.ndarray):
        """Rows ``idx`` in that order (repeats allowed)."""
        idx = np.asarray(idx, dtype=np.int64)
        uniq, inverse = np.unique(idx, return_inverse=True)
        if not self.sparse:
            return np.asarray(self._ds[uniq])[inverse]  # h5py wants increasing indices
        breaks = np.flatnonzero(np.diff(uniq) != 1) + 1
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [uniq.size]])
        data, indices = [], []
        for a, b in zip(starts, stops):  # one read per run of consecutive rows
            lo, hi = self._indptr[uniq[a]], self._indptr[uniq[b - 1] + 1]
            data.append(self._data[lo:hi])
            indices.append(self._indices[lo:hi])
        lengths = self._indptr[uniq + 1] - self._indptr[uniq]
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        out = sp.csr_matrix((np.concatenate(data), np.concatenate(indices), indptr),
                            shape=(uniq.size, self.shape[1]))
        return out[inverse]

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                return self.rows(np.arange(start, stop, step))
            return self.block(start, stop)
        return self.rows(np.asarray(key))

    def iter_blocks(self, chunk: int = 8192):
        """``(start, rows)`` for consecutive blocks of ``chunk`` rows."""
        for start in range(0, self.shape[0], chunk):
            yield start, self.block(start, start + chunk)

    def all_finite(self, chunk: int = 2**22) -> bool:
        ds = self._data if self.sparse else self._ds
        if self.sparse:
            return all(np.isfinite(ds[s : s + chunk]).all() for s in range(0, ds.shape[0], chunk))
        step = max(1, chunk // max(1, self.shape[1]))
        return all(np.isfinite(ds[s : s + step]).all() for s in range(0, self.shape[0], step))


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
    only the requested rows are densified.  A :class:`BackedMatrix` (X on disk) is read a
    batch at a time.  Every path hands the model bit-identical batches, so sparse, dense and
    on-disk X give the same scores.

    An optional ``transform`` (see :class:`~.inputs.InputTransform`) changes what the model
    sees without touching X: only its ``columns`` are read (selected before densifying), and
    its ``apply_(batch, rows)`` is applied in place to every dense batch, which is always the
    source's own memory, never X's.
    """

    def __init__(self, X, device: torch.device, transform=None) -> None:
        self.device = device
        self.transform = transform
        cols = None if transform is None else getattr(transform, "columns", None)
        self._cols = None if cols is None else np.asarray(cols, dtype=np.int64)
        self.backed = isinstance(X, BackedMatrix)
        self.sparse = X.sparse if self.backed else sp.issparse(X)
        if self.backed:
            self._X = X
        elif self.sparse:
            X = X.tocsr() if X.format != "csr" else X
            if X.dtype != np.float32:
                X = X.astype(np.float32)
            self._X = X
        else:
            arr = np.ascontiguousarray(X, dtype=np.float32)
            self._X = torch.from_numpy(arr).to(device)
            if self._cols is not None:
                self._cols_t = torch.from_numpy(self._cols).to(device)
        self.n_obs, self.n_vars = X.shape
        if self._cols is not None:
            self.n_vars = int(self._cols.size)
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

    def _from_block(self, block) -> torch.Tensor:
        """A block read from disk (CSR, or dense rows) as a batch, like the in-memory paths."""
        if sp.issparse(block):
            return self._densify(block.astype(np.float32, copy=False))
        buf = self._buffer(block.shape[0])
        buf.numpy()[...] = block
        return buf if self.device.type == "cpu" else buf.to(self.device, non_blocking=True)

    def _columns(self, block):
        """The transform's columns of a CSR or numpy block (selected before densifying)."""
        return block if self._cols is None else block[:, self._cols]

    def _dense_columns(self, rows: torch.Tensor) -> torch.Tensor:
        """The transform's columns of dense rows (a fresh tensor), into a buffer on the CPU."""
        if rows.device.type != "cpu":
            return rows.index_select(1, self._cols_t)
        return torch.index_select(rows, 1, self._cols_t, out=self._buffer(rows.shape[0]))

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` (a CPU int64 tensor) as a dense float32 tensor."""
        if self.backed:
            out = self._from_block(self._columns(self._X.rows(idx.numpy())))
        elif self.sparse:
            out = self._densify(self._columns(self._X[idx.numpy()]))
        elif self._cols is not None:
            out = self._dense_columns(self._X.index_select(0, idx.to(self._X.device)))
        elif self._X.device.type != "cpu":
            out = self._X.index_select(0, idx.to(self._X.device))
        else:
            out = torch.index_select(self._X, 0, idx, out=self._buffer(idx.shape[0]))
        return out if self.transform is None else self.transform.apply_(out, idx)

    def slice(self, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` as a dense float32 tensor."""
        if self.backed:
            out = self._from_block(self._columns(self._X.block(start, stop)))
        elif self.sparse:
            X = self._X
            lo, hi = X.indptr[start], X.indptr[stop]
            rows = sp.csr_matrix(  # a zero-copy view of the rows (slicing a CSR copies them)
                (X.data[lo:hi], X.indices[lo:hi], X.indptr[start : stop + 1] - lo),
                shape=(stop - start, X.shape[1]),
            )
            out = self._densify(self._columns(rows))
        elif self._cols is not None:
            out = self._dense_columns(self._X[start:stop])
        elif self._X.device.type != "cpu":
            out = self._X[start:stop].clone()
        else:
            out = self._buffer(stop - start).copy_(self._X[start:stop])
        return out if self.transform is None else self.transform.apply_(out, slice(start, stop))
