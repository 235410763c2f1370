"""Curating an annotation: relabel cells in a copy of the column, with undo, redo and an edit log.

Qt-free; the napari curation dock (``_napari/_curation.py``) is a thin shell over it.

* Edits go to ``obs[f"{label_key}_curated"]`` (:func:`keys.curated_key`), a categorical copy of
  the annotation made on first use; the annotation itself is never written.
* Every edit is logged in ``uns['annotatability_curation']['log']``, a DataFrame (``action``,
  ``label_key``, ``cell``, ``from``, ``to``, ``source``, ``time``) that ``write_h5ad`` /
  ``read_h5ad`` round-trip.  An *action* is one call (one cell or many); undo takes back the
  last action and removes its rows, so the log always lists exactly the edits in effect.
  Re-opening a saved file restores everything: :class:`Curation` reads the column and the log
  back from the AnnData (and rebuilds the column from the log if the column alone was dropped).
* A label that is not a category of the annotation is refused, with a message saying how to
  add it (``allow_new=True``), so that a typo never creates a class of one cell.
* :class:`~.review.ReviewQueue` steps through suspicious cells (erroneous first, by ascending
  label quality, then ambiguous) or any selection; :func:`~.review.compare_categories` says
  what a retraining on the curated labels changed (both in :mod:`.review`).
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

from . import keys
from .errors import AnnotatabilityInputError

__all__ = [
    "Curation", "LOG_COLUMNS", "ReviewQueue", "review_order", "QUEUE_SOURCES", "category_changes",
    "compare_categories", "CurationComparison", "CHANGE_COLORS",
]

#: columns of the edit log in ``uns['annotatability_curation']['log']``
LOG_COLUMNS = ("action", "label_key", "cell", "from", "to", "source", "time")
#: a missing label (NaN in the annotation) in the log's ``from`` / ``to`` columns
MISSING = ""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _empty_log() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=np.int64 if c == "action" else object) for c in LOG_COLUMNS})


class Curation:
    """Curate ``adata.obs[label_key]`` into ``adata.obs[f"{label_key}_curated"]``.

    Parameters
    ----------
    adata
        The AnnData; the curated column and the log live in it (nothing is kept aside but the
        redo stack).
    label_key
        The annotation to curate.  None: the one the last training used
        (``uns['annotatability']['label_key']``).  A curated column's name (``label_curated``,
        what a retraining on curated labels records) means its annotation (``label``).

    Examples
    --------
    >>> cur = Curation(adata, "cell_type")
    >>> cur.accept_suggestions(adata.obs["annot_category"] == "erroneous")   # doctest: +SKIP
    >>> cur.relabel(["cell_17"], "T cell")                                    # doctest: +SKIP
    >>> cur.undo()                                                             # doctest: +SKIP
    >>> cur.edits_table().to_csv("edits.csv")                                 # doctest: +SKIP
    """

    def __init__(self, adata, label_key: str | None = None) -> None:
        self.adata = adata
        if label_key is None:
            info = adata.uns.get(keys.UNS, {})
            label_key = info.get("label_key") if isinstance(info, dict) else None
            if label_key is None:
                raise AnnotatabilityInputError("name the annotation to curate (no training recorded a label_key)")
        label_key = str(label_key)
        if label_key.endswith(keys.CURATED_SUFFIX) and label_key[: -len(keys.CURATED_SUFFIX)] in adata.obs:
            label_key = label_key[: -len(keys.CURATED_SUFFIX)]
        if label_key not in adata.obs:
            raise AnnotatabilityInputError(f"obs has no column {label_key!r} to curate")
        self.label_key = label_key
        self.curated_key = keys.curated_key(label_key)
        self._redo: list[pd.DataFrame] = []
        if self.curated_key not in adata.obs and len(self._log()):
            self._ensure()  # saved without the column (or it was dropped): rebuild it from the log
            self._replay()

    # -- the curated column ------------------------------------------------------------------
    def _ensure(self) -> pd.Series:
        obs = self.adata.obs
        original = obs[self.label_key]
        if self.curated_key not in obs:
            if isinstance(original.dtype, pd.CategoricalDtype):
                cats = [str(c) for c in original.cat.categories]
                values = original.astype(object).where(original.notna(), None)
            else:
                values = original.astype(object).where(original.notna(), None)
                cats = sorted({str(v) for v in values if v is not None})
            values = [None if v is None else str(v) for v in values]
            obs[self.curated_key] = pd.Categorical(values, categories=cats)
            colors = self.adata.uns.get(f"{self.label_key}_colors")
            if colors is not None and len(colors) >= len(cats):
                self.adata.uns[f"{self.curated_key}_colors"] = list(colors)[: len(cats)]
        col = obs[self.curated_key]
        if not isinstance(col.dtype, pd.CategoricalDtype):
            values = col.astype(object).where(col.notna(), None)
            cats = self.original_categories()
            cats += sorted({str(v) for v in values if v is not None} - set(cats))
            obs[self.curated_key] = pd.Categorical([None if v is None else str(v) for v in values], categories=cats)
            col = obs[self.curated_key]
        elif not all(isinstance(c, str) for c in col.cat.categories):
            obs[self.curated_key] = col.cat.rename_categories([str(c) for c in col.cat.categories])
            col = obs[self.curated_key]
        return col

    def original_categories(self) -> list[str]:
        col = self.adata.obs[self.label_key]
        if isinstance(col.dtype, pd.CategoricalDtype):
            return [str(c) for c in col.cat.categories]
        return sorted({str(v) for v in col.dropna()})

    @property
    def labels(self) -> pd.Series:
        """The curated labels (created as a copy of the annotation on first use)."""
        return self._ensure()

    @property
    def categories(self) -> list[str]:
        """Labels a cell may be given (the annotation's categories, plus any added with ``allow_new``)."""
        return [str(c) for c in self._ensure().cat.categories]

    def _codes(self) -> np.ndarray:
        return self._ensure().cat.codes.to_numpy()

    def _set(self, idx: np.ndarray, labels) -> None:
        col = self._ensure()
        cats = [str(c) for c in col.cat.categories]
        lookup = {c: i for i, c in enumerate(cats)}
        codes = col.cat.codes.to_numpy().copy()
        codes[idx] = [(-1 if lab == MISSING and MISSING not in lookup else lookup[lab]) for lab in labels]
        self.adata.obs[self.curated_key] = pd.Categorical.from_codes(codes, categories=col.cat.categories)

    def _add_category(self, label: str) -> None:
        col = self._ensure()
        self.adata.obs[self.curated_key] = col.cat.add_categories([label])
        colors = self.adata.uns.get(f"{self.curated_key}_colors")
        if colors is not None:  # keep the stored colours in step with the categories
            from matplotlib import colormaps
            from matplotlib.colors import to_hex

            self.adata.uns[f"{self.curated_key}_colors"] = [*list(colors), to_hex(colormaps["tab20"](len(colors) % 20))]

    # -- validation --------------------------------------------------------------------------
    def cells(self, cells) -> np.ndarray:
        """Positions (int) of ``cells``: positions, a boolean mask over obs, or obs names."""
        n = self.adata.n_obs
        if isinstance(cells, pd.Series):
            cells = cells.to_numpy()
        if isinstance(cells, (int, np.integer, str)):
            cells = [cells]
        arr = np.asarray(list(cells) if isinstance(cells, (set, frozenset)) else cells)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise AnnotatabilityInputError(f"a boolean mask of cells needs {n} values, got {arr.shape[0]}")
            return np.flatnonzero(arr)
        if arr.dtype.kind in "iu":
            idx = arr.astype(np.int64).ravel()
            bad = idx[(idx < 0) | (idx >= n)]
            if bad.size:
                raise AnnotatabilityInputError(f"cell positions out of range 0..{n - 1}: {bad[:5].tolist()}")
            return np.unique(idx)
        names = pd.Index(self.adata.obs_names)
        pos = names.get_indexer(arr.astype(str).ravel())
        if (pos < 0).any():
            missing = arr.astype(str).ravel()[pos < 0][:5].tolist()
            raise AnnotatabilityInputError(f"no cells named {missing} in obs_names")
        return np.unique(pos.astype(np.int64))

    def check_label(self, label, *, allow_new: bool = False) -> str:
        """``label`` as a category of the curated column; refused (or, with ``allow_new``, added) if new."""
        if label is None or (isinstance(label, float) and np.isnan(label)) or str(label) == MISSING:
            raise AnnotatabilityInputError("give a label to set (got none)")
        label = str(label)
        cats = self.categories
        if label in cats:
            return label
        if not allow_new:
            shown = ", ".join(cats[:12]) + (" ..." if len(cats) > 12 else "")
            raise AnnotatabilityInputError(
                f"{label!r} is not a label of {self.label_key!r} ({shown}); to add it as a new label of "
                f"{self.curated_key!r} pass allow_new=True (napari: tick 'allow a new label'); the original "
                "column keeps its labels"
            )
        self._add_category(label)
        return label

    # -- edits -------------------------------------------------------------------------------
    def relabel(self, cells, label, source: str = "manual", *, allow_new: bool = False) -> int:
        """Give ``cells`` the curated label ``label`` in one action; returns how many changed.

        ``source`` is logged: ``"suggestion"``, ``"manual"`` or ``"bulk"``.  Cells that already
        carry ``label`` are left out of the log.  A label that is not a category is refused
        unless ``allow_new`` (then it becomes a new category of the curated column only).
        """
        idx = self.cells(cells)
        label = self.check_label(label, allow_new=allow_new)
        return self._apply(idx, [label] * idx.size, source)

    def accept_suggestions(self, cells, source: str = "suggestion") -> int:
        """Give each of ``cells`` its suggested label (``obs['annot_suggested_label']``) in one action."""
        if keys.SUGGESTED_LABEL not in self.adata.obs:
            raise AnnotatabilityInputError("no suggested labels (obs['annot_suggested_label']): train first")
        idx = self.cells(cells)
        sugg = self.adata.obs[keys.SUGGESTED_LABEL].iloc[idx]
        keep = sugg.notna().to_numpy()
        idx, sugg = idx[keep], sugg[keep].astype(str).to_numpy()
        for lab in dict.fromkeys(sugg):
            self.check_label(lab)
        return self._apply(idx, list(sugg), source)

    def _apply(self, idx: np.ndarray, labels: list[str], source: str) -> int:
        if source not in keys.EDIT_SOURCES:
            raise AnnotatabilityInputError(f"source must be one of {', '.join(keys.EDIT_SOURCES)}, got {source!r}")
        col = self._ensure()
        current = col.iloc[idx].astype(object).where(col.iloc[idx].notna(), MISSING).astype(str).to_numpy()
        labels = np.asarray(labels, dtype=object).astype(str)
        changed = current != labels
        if not changed.any():
            return 0
        idx, before, after = idx[changed], current[changed], labels[changed]
        self._set(idx, after)
        log = self._log()
        action = int(log["action"].max()) + 1 if len(log) else 0
        rows = pd.DataFrame({
            "action": np.full(idx.size, action, dtype=np.int64), "label_key": [self.label_key] * idx.size,
            "cell": self.adata.obs_names[idx].astype(str).to_numpy().astype(object), "from": before.astype(object),
            "to": after.astype(object), "source": [source] * idx.size, "time": [_now()] * idx.size,
        })
        self._store(pd.concat([log, rows], ignore_index=True) if len(log) else rows)
        self._redo.clear()
        return int(idx.size)

    # -- undo / redo -------------------------------------------------------------------------
    def _mine(self, log: pd.DataFrame) -> np.ndarray:
        return (log["label_key"].astype(str) == self.label_key).to_numpy()

    @property
    def can_undo(self) -> bool:
        log = self._log()
        return bool(len(log) and self._mine(log).any())

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> np.ndarray:
        """Take back the last action on this annotation; returns the positions of its cells.

        Raises :class:`AnnotatabilityInputError` ("nothing to undo") when there is none, and
        when its cells were relabelled since by other means (nothing is changed then).
        """
        log = self._log()
        mine = self._mine(log) if len(log) else np.zeros(0, bool)
        if not mine.any():
            raise AnnotatabilityInputError(f"nothing to undo: no edits of {self.label_key!r} are recorded")
        action = int(log.loc[mine, "action"].max())
        rows = (log["action"] == action).to_numpy() & mine
        last = log[rows]
        order = pd.Index(self.adata.obs_names).get_indexer(last["cell"].astype(str).to_numpy())
        self._check_current(order, last["to"].astype(str).to_numpy(), "undo")
        self._set(order, last["from"].astype(str).to_numpy())
        self._store(log[~rows].reset_index(drop=True))
        self._redo.append(last.reset_index(drop=True))
        return np.unique(order)

    def redo(self) -> np.ndarray:
        """Apply again the last action undone; returns the positions of its cells."""
        if not self._redo:
            raise AnnotatabilityInputError(f"nothing to redo: no undone edits of {self.label_key!r}")
        rows = self._redo[-1]
        order = pd.Index(self.adata.obs_names).get_indexer(rows["cell"].astype(str).to_numpy())
        self._check_current(order, rows["from"].astype(str).to_numpy(), "redo")
        for lab in dict.fromkeys(rows["to"].astype(str)):
            if lab not in self.categories:
                self._add_category(lab)  # a new label removed since: put it back
        self._redo.pop()
        self._set(order, rows["to"].astype(str).to_numpy())
        log = self._log()
        rows = rows.copy()
        rows["action"] = int(log["action"].max()) + 1 if len(log) else 0
        self._store(pd.concat([log, rows], ignore_index=True) if len(log) else rows)
        return np.unique(order)

    def _check_current(self, order: np.ndarray, expected: np.ndarray, what: str) -> None:
        if (order < 0).any():
            raise AnnotatabilityInputError(f"cannot {what}: the log names cells that are not in this AnnData")
        col = self._ensure()
        now = col.iloc[order].astype(object).where(col.iloc[order].notna(), MISSING).astype(str).to_numpy()
        differ = now != expected
        if differ.any():
            i = int(np.flatnonzero(differ)[0])
            raise AnnotatabilityInputError(
                f"cannot {what}: {int(differ.sum())} of its cells were relabelled since by other means (cell "
                f"{self.adata.obs_names[order[i]]!r} is {now[i]!r}, the log expects {expected[i]!r}); nothing changed"
            )

    # -- the log -----------------------------------------------------------------------------
    def _log(self) -> pd.DataFrame:
        info = self.adata.uns.get(keys.CURATION)
        log = info.get("log") if isinstance(info, dict) else None
        if log is None:
            return _empty_log()
        if not isinstance(log, pd.DataFrame):
            log = pd.DataFrame(dict(log))
        missing = [c for c in LOG_COLUMNS if c not in log.columns]
        if missing:
            raise AnnotatabilityInputError(f"uns[{keys.CURATION!r}]['log'] lacks the columns {missing}")
        log = log.reset_index(drop=True)
        log["action"] = log["action"].astype(np.int64)
        return log

    def _store(self, log: pd.DataFrame) -> None:
        info = self.adata.uns.get(keys.CURATION)
        info = dict(info) if isinstance(info, dict) else {}
        log = log.reset_index(drop=True)
        log.index = log.index.astype(str)  # h5ad writes a string index
        for c in ("label_key", "cell", "from", "to", "source", "time"):
            log[c] = log[c].astype(str).astype(object)
        info["log"] = log[list(LOG_COLUMNS)]
        info["version"] = keys.package_version()
        self.adata.uns[keys.CURATION] = info

    def _replay(self) -> None:
        log = self._log()
        mine = log[self._mine(log)]
        for lab in dict.fromkeys(mine["to"].astype(str)):
            if lab != MISSING and lab not in self.categories:
                self._add_category(lab)
        order = pd.Index(self.adata.obs_names).get_indexer(mine["cell"].astype(str).to_numpy())
        ok = order >= 0
        self._set(order[ok], mine["to"].astype(str).to_numpy()[ok])

    @property
    def log(self) -> pd.DataFrame:
        """The edits of this annotation in effect, oldest first (a copy)."""
        log = self._log()
        return log[self._mine(log)].reset_index(drop=True) if len(log) else log

    @property
    def n_edits(self) -> int:
        """How many edits of this annotation are in effect (cheap: read at every review step)."""
        info = self.adata.uns.get(keys.CURATION)
        log = info.get("log") if isinstance(info, dict) else None
        if log is None or not len(log):
            return 0
        return int((np.asarray(log["label_key"], dtype=object) == self.label_key).sum())

    @property
    def n_actions(self) -> int:
        log = self.log
        return int(log["action"].nunique()) if len(log) else 0

    def edits_table(self, *, latest: bool = False) -> pd.DataFrame:
        """One row per edit: ``cell``, ``original`` (the annotation), ``previous``, ``curated``, ``source``, ``time``.

        ``curated`` is the label that edit set; with ``latest`` only each cell's last edit is
        kept, so ``curated`` is the cell's curated label now.  This is what the CSV export writes.
        """
        log = self.log
        names = pd.Index(self.adata.obs_names)
        pos = names.get_indexer(log["cell"].astype(str).to_numpy())
        original = self.adata.obs[self.label_key].astype(object)
        orig = [str(original.iloc[p]) if p >= 0 and pd.notna(original.iloc[p]) else MISSING for p in pos]
        table = pd.DataFrame({
            "cell": log["cell"].astype(str).to_numpy(), "original": orig, "previous": log["from"].to_numpy(),
            "curated": log["to"].to_numpy(), "source": log["source"].to_numpy(), "time": log["time"].to_numpy(),
        })
        if latest:
            table = table.drop_duplicates("cell", keep="last").reset_index(drop=True)
        return table

    def write_csv(self, path, *, latest: bool = False, protect=()) -> str:
        """Write :meth:`edits_table` as CSV, atomically (never over a path in ``protect``)."""
        from .io import atomic_write, check_output_path

        out = check_output_path(path, protect=protect)
        table = self.edits_table(latest=latest)
        return str(atomic_write(out, lambda tmp: table.to_csv(tmp, index=False)))

    def changed(self) -> np.ndarray:
        """Boolean mask of the cells whose curated label differs from the annotation."""
        if self.curated_key not in self.adata.obs:
            return np.zeros(self.adata.n_obs, dtype=bool)
        a = self.adata.obs[self.label_key].astype(object).where(self.adata.obs[self.label_key].notna(), MISSING)
        b = self.labels.astype(object).where(self.labels.notna(), MISSING)
        return a.astype(str).to_numpy() != b.astype(str).to_numpy()


# the review queue and the comparison live in .review; importable from here too
from .review import (  # noqa: E402
    CHANGE_COLORS,
    QUEUE_SOURCES,
    CurationComparison,
    ReviewQueue,
    category_changes,
    compare_categories,
    review_order,
)
