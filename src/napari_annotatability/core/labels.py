"""Which obs columns are annotations: one rule for the napari widget, the CLI and the engine.

An annotation is a column of labels to train on: categorical or text values, or a few numeric
codes (the instruments' clusterings come as integers, ``Cluster`` = 1, 2, ...), with at
least two of them and not one per cell.  A column of measurements (many distinct numbers), a
per-cell identifier, a yes/no flag, or a result this package writes (a training would rewrite the very column
it trains on) is not one.  :func:`annotation_problem` says why a column is refused, in words
fit for an error message; :func:`annotation_columns` lists those that pass.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import keys

__all__ = ["annotation_columns", "annotation_problem", "max_classes", "MAX_NUMERIC_CODES", "RESULT_COLUMNS"]

#: a numeric column is an annotation (codes) only up to this many distinct values
MAX_NUMERIC_CODES = 50
#: obs columns a training or the graph writes: training on them would rewrite them
RESULT_COLUMNS = frozenset({keys.CATEGORY, keys.SUGGESTED_LABEL, keys.COMMUNITY, keys.CATEGORY_BEFORE,
                            keys.CATEGORY_CHANGE})


def max_classes(n_obs: int) -> int:
    """The most distinct labels an annotation of ``n_obs`` cells may have: half as many as cells
    (a class of one cell cannot be learnt from the others; more is a per-cell column)."""
    return max(2, int(n_obs) // 2)


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)


def _n_distinct(col: pd.Series, stop: int) -> int:
    """Distinct non-missing values of ``col``; a number above ``stop`` as soon as that is certain."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        return int(np.count_nonzero(np.bincount(codes[codes >= 0], minlength=1)))
    if len(col) > 4 * stop:  # a quick look first: measurements show many values in a few rows
        head = col.iloc[: 4 * stop].nunique(dropna=True)
        if head > stop:
            return int(head)
    return int(col.nunique(dropna=True))


def annotation_problem(obs: pd.DataFrame, key: str, *, min_classes: int = 2) -> str | None:
    """Why ``obs[key]`` is not an annotation to train on, or None when it is one.

    Missing labels (NaN) are not judged here: training names how many cells lack one.
    """
    if key not in obs.columns:
        return f"{key!r} is not a column of obs"
    if key in RESULT_COLUMNS:
        return (f"obs[{key!r}] is a result of Annotatability (a training rewrites it); copy it to a column of "
                "its own to train on it")
    col = obs[key]
    if pd.api.types.is_bool_dtype(col.dtype):
        return (f"obs[{key!r}] is a yes/no flag (a QC mark, a truth column), not an annotation; to train on it, "
                f"make it categorical: adata.obs[{key!r}] = adata.obs[{key!r}].astype('category')")
    limit = max_classes(len(obs))
    if _is_numeric(col):
        n = _n_distinct(col, MAX_NUMERIC_CODES)
        if n > MAX_NUMERIC_CODES:
            return (f"obs[{key!r}] holds numbers with {n if n <= limit else 'many'} distinct values: a measurement, "
                    f"not an annotation (numeric codes of at most {MAX_NUMERIC_CODES} classes are; store cell types "
                    "as text or categories)")
    else:
        n = _n_distinct(col, limit)
        if n > limit:
            return (f"obs[{key!r}] has {n} distinct labels for {len(obs)} cells: that is not an annotation (a "
                    "continuous or per-cell column?); pick a column of cell types or states")
    if n < min_classes:
        return (f"obs[{key!r}] has {n} distinct label{'s' if n != 1 else ''}; training needs at least "
                f"{min_classes}")
    return None


def annotation_columns(obs: pd.DataFrame, *, exclude_curated: bool = False) -> list[str]:
    """The columns of ``obs`` that :func:`annotation_problem` accepts, in obs order.

    ``exclude_curated``: leave out the curated copies (``<key>_curated``) of other columns.
    """
    curated = {keys.curated_key(c) for c in obs.columns} if exclude_curated else set()
    return [c for c in obs.columns if c not in curated and annotation_problem(obs, c) is None]
