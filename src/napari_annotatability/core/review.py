"""Which cells to review, in which order, and what a retraining on curated labels changed (Qt-free).

* :func:`review_order` / :class:`ReviewQueue`: suspicious cells (erroneous first, by ascending
  label quality, then ambiguous) or any selection, with a position and which were reviewed;
* :func:`compare_categories`: the categories before against those after a retraining, per cell
  (``obs['annot_category_change']``) and counted, and -- with the original annotation recorded
  beside the curated one -- which label the retrained network prefers for the edited cells.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import keys
from .errors import AnnotatabilityInputError

if TYPE_CHECKING:
    from .curation import Curation

__all__ = ["QUEUE_SOURCES", "review_order", "ReviewQueue", "CHANGE_COLORS", "category_changes",
           "CurationComparison", "compare_categories"]

#: how a review queue is built from the categories
QUEUE_SOURCES = ("suspicious", "erroneous", "ambiguous")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


# -- review queue -----------------------------------------------------------------------------
def _rank(adata) -> np.ndarray | None:
    for k in (keys.LABEL_QUALITY, keys.CONFIDENCE):
        if k in adata.obs:
            return adata.obs[k].to_numpy(dtype=np.float64)
    return None


def review_order(adata, source="suspicious") -> np.ndarray:
    """The cells to review, most suspicious first.

    ``source``: ``"suspicious"`` (erroneous cells by ascending label quality -- else confidence --
    then ambiguous ones the same way), ``"erroneous"``, ``"ambiguous"``, or any cells (positions,
    a boolean mask) which are then ordered by ascending label quality when there is one.
    """
    rank = _rank(adata)
    if isinstance(source, str):
        if source not in QUEUE_SOURCES:
            raise AnnotatabilityInputError(f"queue source must be one of {', '.join(QUEUE_SOURCES)} or cells, got {source!r}")
        if keys.CATEGORY not in adata.obs:
            raise AnnotatabilityInputError("no categories (obs['annot_category']): train first")
        cat = adata.obs[keys.CATEGORY].astype(str).to_numpy()
        wanted = ("erroneous", "ambiguous") if source == "suspicious" else (source,)
        parts = []
        for c in wanted:
            idx = np.flatnonzero(cat == c)
            if rank is not None:
                idx = idx[np.argsort(rank[idx], kind="stable")]
            parts.append(idx)
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
    arr = np.asarray(list(source) if isinstance(source, (set, frozenset)) else source)
    idx = np.flatnonzero(arr) if arr.dtype == bool else np.unique(arr.astype(np.int64).ravel())
    if idx.size and (idx.min() < 0 or idx.max() >= adata.n_obs):
        raise AnnotatabilityInputError(f"cell positions out of range 0..{adata.n_obs - 1}")
    if rank is not None:
        idx = idx[np.argsort(rank[idx], kind="stable")]
    return idx.astype(np.int64)


@dataclass
class ReviewQueue:
    """A list of cells to look at one by one, with a position and which were reviewed.

    A cell is *reviewed* once its suggestion was accepted, it was relabelled, or it was skipped
    (kept as it is); moving with :meth:`next` / :meth:`previous` reviews nothing.
    """

    cells: np.ndarray
    description: str = ""
    position: int = 0
    reviewed: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.cells = np.asarray(self.cells, dtype=np.int64)
        if self.reviewed is None:
            self.reviewed = np.zeros(len(self.cells), dtype=bool)

    @classmethod
    def build(cls, adata, source="suspicious") -> ReviewQueue:
        cells = review_order(adata, source)
        return cls(cells, description=source if isinstance(source, str) else "selection")

    def __len__(self) -> int:
        return len(self.cells)

    @property
    def current(self) -> int | None:
        """The cell (position in obs) under review, None for an empty queue."""
        return int(self.cells[self.position]) if len(self.cells) else None

    @property
    def n_reviewed(self) -> int:
        return int(self.reviewed.sum())

    @property
    def done(self) -> bool:
        return bool(len(self.cells)) and bool(self.reviewed.all())

    def progress(self) -> str:
        return f"{self.n_reviewed} of {len(self)} reviewed"

    def goto(self, position: int) -> int | None:
        if len(self.cells):
            self.position = int(np.clip(position, 0, len(self.cells) - 1))
        return self.current

    def next(self) -> int | None:
        """Move to the next cell; None (and stay) at the end."""
        if self.position + 1 >= len(self.cells):
            return None
        self.position += 1
        return self.current

    def previous(self) -> int | None:
        """Move to the previous cell; None (and stay) at the start."""
        if self.position == 0 or not len(self.cells):
            return None
        self.position -= 1
        return self.current

    def mark_reviewed(self, position: int | None = None) -> None:
        if len(self.cells):
            self.reviewed[self.position if position is None else position] = True

    def next_unreviewed(self) -> int | None:
        """Move to the first cell not yet reviewed after this one (wrapping); None when all are."""
        n = len(self.cells)
        for step in range(1, n + 1):
            pos = (self.position + step) % n
            if not self.reviewed[pos]:
                self.position = pos
                return self.current
        return None

    def find(self, cell: int) -> int | None:
        hit = np.flatnonzero(self.cells == int(cell))
        return int(hit[0]) if hit.size else None


# -- what a retraining changed ----------------------------------------------------------------
#: colours of the change categories: the colour of where a cell went, lighter from ambiguous
CHANGE_COLORS = {
    keys.CHANGE_UNCHANGED: "#d9d9d9",
    "erroneous → correct": "#2ca02c", "ambiguous → correct": "#98df8a",
    "correct → ambiguous": "#ff9f1c", "erroneous → ambiguous": "#ffd8a8",
    "correct → erroneous": "#d62728", "ambiguous → erroneous": "#ff9896",
}


def category_changes(before, after) -> pd.Categorical:
    """Per cell ``"unchanged"`` or ``"<before> → <after>"`` (categories as in :data:`CHANGE_COLORS`)."""
    b = pd.Series(before).astype(object).where(pd.Series(before).notna(), "none").astype(str).to_numpy()
    a = pd.Series(after).astype(object).where(pd.Series(after).notna(), "none").astype(str).to_numpy()
    if b.shape != a.shape:
        raise AnnotatabilityInputError(f"before has {b.size} cells, after {a.size}")
    out = np.where(b == a, keys.CHANGE_UNCHANGED, np.char.add(np.char.add(b.astype(str), " → "), a.astype(str)))
    cats = list(CHANGE_COLORS) + sorted(set(out.tolist()) - set(CHANGE_COLORS))
    return pd.Categorical(out, categories=cats)


@dataclass
class CurationComparison:
    """What a retraining on curated labels changed (see :func:`compare_categories`)."""

    table: pd.DataFrame  # index: categories; columns: before, after, change
    moved: int  # cells whose category moved
    n_cells: int
    n_edited: int  # cells whose curated label differs from the annotation
    #: of the edited cells, how many the retrained network finds more probable under the curated
    #: label than under the original one (None without ``compare_key``'s scores)
    prefer_curated: int | None = None
    mean_p_curated: float | None = None
    mean_p_original: float | None = None

    def text(self) -> str:
        s = f"{self.moved} of {self.n_cells} cells changed category."
        if self.prefer_curated is not None and self.n_edited:
            s += (f" Of the {self.n_edited} relabelled cells the retrained network prefers the curated label for "
                  f"{self.prefer_curated} (mean p {self.mean_p_curated:.2f}, original label {self.mean_p_original:.2f}).")
        return s


def compare_categories(adata, before, curation: Curation | None = None) -> CurationComparison:
    """Compare ``before`` (the categories of the training before) with ``obs['annot_category']``.

    Writes ``obs['annot_category_before']``, ``obs['annot_category_change']`` (with its colours in
    ``uns``) and a summary in ``uns['annotatability_curation']['comparison']``.  With a
    ``curation`` and a retraining that recorded the original annotation too
    (``compare_key``, see :func:`~.dynamics.compare_annotations`: ``obs['annot_other_confidence']``),
    it also says whether the network prefers the curated or the original label of the edited cells.
    """
    if keys.CATEGORY not in adata.obs:
        raise AnnotatabilityInputError("no categories after the retraining (obs['annot_category'])")
    before = pd.Categorical(pd.Series(before).astype(str).to_numpy(), categories=list(keys.CATEGORIES))
    after = adata.obs[keys.CATEGORY]
    change = category_changes(before, after)
    adata.obs[keys.CATEGORY_BEFORE] = pd.Categorical(before, categories=list(keys.CATEGORIES))
    adata.obs[keys.CATEGORY_CHANGE] = change
    adata.uns[f"{keys.CATEGORY_CHANGE}_colors"] = [CHANGE_COLORS.get(c, "#7f7f7f") for c in change.categories]
    adata.uns[f"{keys.CATEGORY_BEFORE}_colors"] = list(keys.CATEGORY_COLORS)
    b = pd.Series(before).value_counts()
    a = after.astype(str).value_counts()
    table = pd.DataFrame({"before": [int(b.get(c, 0)) for c in keys.CATEGORIES],
                          "after": [int(a.get(c, 0)) for c in keys.CATEGORIES]}, index=list(keys.CATEGORIES))
    table["change"] = table["after"] - table["before"]
    moved = int((np.asarray(change) != keys.CHANGE_UNCHANGED).sum())
    edited = curation.changed() if curation is not None else np.zeros(adata.n_obs, bool)
    out = CurationComparison(table=table, moved=moved, n_cells=adata.n_obs, n_edited=int(edited.sum()))
    info = adata.uns.get(keys.UNS, {})
    if (curation is not None and keys.OTHER_CONFIDENCE in adata.obs and isinstance(info, dict)
            and info.get("other_label_key") == curation.label_key and edited.any()):
        p_cur = adata.obs[keys.CONFIDENCE].to_numpy(dtype=float)[edited]
        p_orig = adata.obs[keys.OTHER_CONFIDENCE].to_numpy(dtype=float)[edited]
        out.prefer_curated = int((p_cur > p_orig).sum())
        out.mean_p_curated, out.mean_p_original = float(p_cur.mean()), float(p_orig.mean())
    store = dict(adata.uns.get(keys.CURATION) or {})
    store["comparison"] = {
        "categories": np.asarray(keys.CATEGORIES, dtype=object), "before": table["before"].to_numpy(np.int64),
        "after": table["after"].to_numpy(np.int64), "moved": moved, "n_edited": out.n_edited, "time": _now(),
        **({"prefer_curated": out.prefer_curated} if out.prefer_curated is not None else {}),
    }
    adata.uns[keys.CURATION] = store
    return out
