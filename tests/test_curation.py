"""core.curation: relabel into a copy, undo/redo, the edit log (h5ad round trip, CSV), the review queue."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_annotatability import core
from napari_annotatability.core import keys
from napari_annotatability.core.curation import Curation, ReviewQueue, category_changes, compare_categories, review_order
from napari_annotatability.core.errors import AnnotatabilityInputError


@pytest.fixture
def scored():
    """A small AnnData with an annotation and fake results (categories, quality, suggestions)."""
    rng = np.random.default_rng(0)
    n = 40
    labels = np.array(["a", "b", "c"])[np.arange(n) % 3]
    adata = ad.AnnData(rng.normal(size=(n, 5)).astype(np.float32),
                       obs=pd.DataFrame({"label": pd.Categorical(labels, categories=["a", "b", "c"])},
                                        index=[f"cell_{i}" for i in range(n)]))
    cat = np.array(["correct"] * n, dtype=object)
    cat[[3, 7, 11, 20]] = "erroneous"
    cat[[5, 9, 30]] = "ambiguous"
    adata.obs[keys.CATEGORY] = pd.Categorical(cat, categories=list(keys.CATEGORIES))
    quality = rng.random(n)
    quality[[3, 7, 11, 20]] = [0.3, 0.1, 0.2, 0.05]
    quality[[5, 9, 30]] = [0.6, 0.4, 0.5]
    adata.obs[keys.LABEL_QUALITY] = quality.astype(np.float32)
    sugg = labels.copy()
    sugg[[3, 7, 11, 20]] = ["a", "a", "a", "b"]  # cell 3 is "a" already
    adata.obs[keys.SUGGESTED_LABEL] = pd.Categorical(sugg, categories=["a", "b", "c"])
    adata.uns[keys.UNS] = {"label_key": "label"}
    return adata


def test_relabel_writes_a_copy_and_never_the_original(scored):
    original = scored.obs["label"].copy()
    cur = Curation(scored)  # label_key from the training record
    assert cur.label_key == "label" and cur.curated_key == "label_curated"
    assert "label_curated" not in scored.obs  # created on first use
    assert cur.relabel([1], "c") == 1
    col = scored.obs["label_curated"]
    assert isinstance(col.dtype, pd.CategoricalDtype) and list(col.cat.categories) == ["a", "b", "c"]
    assert col.iloc[1] == "c" and (col.drop(col.index[1]) == original.drop(original.index[1])).all()
    pd.testing.assert_series_equal(scored.obs["label"], original)
    assert cur.relabel([1], "c") == 0  # already so: nothing logged
    assert cur.n_edits == 1 and cur.log["source"].tolist() == ["manual"]


def test_bulk_relabel_is_one_action_by_mask_positions_or_names(scored):
    cur = Curation(scored, "label")
    mask = np.zeros(scored.n_obs, bool)
    mask[:6] = True
    assert cur.relabel(mask, "a", source="bulk") == 4  # 0 and 3 are "a" already
    assert cur.n_actions == 1 and set(cur.log["source"]) == {"bulk"}
    assert cur.relabel(["cell_10", "cell_13"], "c") == 2
    assert cur.labels.iloc[[10, 13]].tolist() == ["c", "c"]
    assert cur.n_actions == 2
    assert cur.changed().sum() == 6


def test_accept_suggestions(scored):
    cur = Curation(scored)
    err = (scored.obs[keys.CATEGORY] == "erroneous").to_numpy()
    assert cur.accept_suggestions(err) == 3  # cell 3's suggestion is its label
    assert cur.labels.iloc[[7, 11, 20]].tolist() == ["a", "a", "b"]
    log = cur.log
    assert log["cell"].tolist() == ["cell_7", "cell_11", "cell_20"]
    assert log["from"].tolist() == ["b", "c", "c"] and log["to"].tolist() == ["a", "a", "b"]
    assert set(log["source"]) == {"suggestion"} and log["time"].str.contains("T").all()


def test_undo_redo_and_nothing_to_undo(scored):
    cur = Curation(scored)
    with pytest.raises(AnnotatabilityInputError, match="nothing to undo"):
        cur.undo()
    with pytest.raises(AnnotatabilityInputError, match="nothing to redo"):
        cur.redo()
    assert not cur.can_undo and not cur.can_redo
    cur.relabel([0, 1], "c", source="bulk")
    cur.relabel([2], "a")
    np.testing.assert_array_equal(cur.undo(), [2])
    assert cur.labels.iloc[2] == "c" and cur.n_edits == 2 and cur.can_redo
    np.testing.assert_array_equal(cur.undo(), [0, 1])
    assert (cur.labels.astype(str).to_numpy() == scored.obs["label"].astype(str).to_numpy()).all()
    assert cur.n_edits == 0 and not cur.can_undo
    cur.redo()
    cur.redo()
    assert cur.labels.iloc[[0, 1, 2]].tolist() == ["c", "c", "a"] and cur.n_edits == 3
    assert not cur.can_redo
    cur.undo()
    cur.relabel([5], "a")  # a new edit drops what could be redone
    assert not cur.can_redo


def test_undo_refuses_when_the_cells_changed_behind_its_back(scored):
    cur = Curation(scored)
    cur.relabel([4], "c")
    scored.obs.loc["cell_4", "label_curated"] = "a"
    with pytest.raises(AnnotatabilityInputError, match="relabelled since by other means"):
        cur.undo()
    assert cur.labels.iloc[4] == "a" and cur.n_edits == 1  # nothing changed


def test_a_label_that_is_not_a_category_is_refused_unless_allowed(scored):
    cur = Curation(scored)
    with pytest.raises(AnnotatabilityInputError, match=r"'d' is not a label of 'label' \(a, b, c\).*allow_new=True"):
        cur.relabel([0], "d")
    assert cur.n_edits == 0 and cur.labels.iloc[0] == "a"
    with pytest.raises(AnnotatabilityInputError, match="give a label"):
        cur.relabel([0], None)
    with pytest.raises(AnnotatabilityInputError, match="source must be one of"):
        cur.relabel([0], "b", source="magic")
    with pytest.raises(AnnotatabilityInputError, match="out of range"):
        cur.relabel([999], "b")
    with pytest.raises(AnnotatabilityInputError, match="no cells named"):
        cur.relabel(["nope"], "b")
    assert cur.relabel([0], "d", allow_new=True) == 1
    assert cur.categories == ["a", "b", "c", "d"]
    assert list(scored.obs["label"].cat.categories) == ["a", "b", "c"]  # the original keeps its labels


def test_log_and_column_survive_write_and_read_h5ad(scored, tmp_path):
    cur = Curation(scored)
    cur.accept_suggestions((scored.obs[keys.CATEGORY] == "erroneous").to_numpy())
    cur.relabel([0, 1, 2], "b", source="bulk")
    cur.relabel([12], "e", allow_new=True)
    before = cur.edits_table()
    path = tmp_path / "curated.h5ad"
    core.write_h5ad(scored, path)
    back = core.read_h5ad(path)
    again = Curation(back, "label")
    pd.testing.assert_frame_equal(again.edits_table(), before)
    assert again.labels.astype(str).tolist() == cur.labels.astype(str).tolist()
    assert again.categories == ["a", "b", "c", "e"]
    # undo works on the re-opened file, and the result saves again
    np.testing.assert_array_equal(again.undo(), [12])
    assert again.labels.iloc[12] == back.obs["label"].iloc[12]
    core.write_h5ad(back, tmp_path / "again.h5ad")
    assert Curation(core.read_h5ad(tmp_path / "again.h5ad"), "label").n_edits == 5
    # saved without the curated column (or it was dropped): rebuilt from the log
    del back.obs["label_curated"]
    rebuilt = Curation(back, "label_curated")  # the curated column's name means its annotation
    assert rebuilt.label_key == "label" and rebuilt.labels.iloc[[0, 7, 20]].tolist() == ["b", "a", "b"]


def test_edits_table_and_csv(scored, tmp_path):
    cur = Curation(scored)
    cur.relabel([1], "c")
    cur.relabel([1], "a")
    table = cur.edits_table()
    assert list(table.columns) == ["cell", "original", "previous", "curated", "source", "time"]
    assert table[["cell", "original", "previous", "curated"]].values.tolist() == [
        ["cell_1", "b", "b", "c"], ["cell_1", "b", "c", "a"]]
    latest = cur.edits_table(latest=True)
    assert latest[["cell", "original", "curated"]].values.tolist() == [["cell_1", "b", "a"]]
    out = cur.write_csv(tmp_path / "edits.csv")
    csv = pd.read_csv(out)
    assert csv["cell"].tolist() == ["cell_1", "cell_1"] and csv["source"].tolist() == ["manual", "manual"]
    with pytest.raises(AnnotatabilityInputError, match="does not exist"):
        cur.write_csv(tmp_path / "missing" / "edits.csv")


def test_two_annotations_keep_separate_logs(scored):
    scored.obs["other"] = scored.obs["label"].astype(str)  # not categorical
    a, b = Curation(scored, "label"), Curation(scored, "other")
    a.relabel([0], "b")
    b.relabel([1], "c")
    assert a.n_edits == b.n_edits == 1
    b.undo()
    assert a.n_edits == 1 and not b.can_undo
    assert scored.obs["other_curated"].dtype == "category"


def test_review_order_erroneous_first_by_quality_then_ambiguous(scored):
    np.testing.assert_array_equal(review_order(scored), [20, 7, 11, 3, 9, 30, 5])
    np.testing.assert_array_equal(review_order(scored, "erroneous"), [20, 7, 11, 3])
    np.testing.assert_array_equal(review_order(scored, "ambiguous"), [9, 30, 5])
    np.testing.assert_array_equal(review_order(scored, [5, 7, 1]),
                                  np.array([5, 7, 1])[np.argsort(scored.obs[keys.LABEL_QUALITY].to_numpy()[[5, 7, 1]])])
    with pytest.raises(AnnotatabilityInputError, match="queue source"):
        review_order(scored, "bogus")
    del scored.obs[keys.CATEGORY]
    with pytest.raises(AnnotatabilityInputError, match="train first"):
        review_order(scored)


def test_review_queue_position_and_progress(scored):
    q = ReviewQueue.build(scored, "suspicious")
    assert len(q) == 7 and q.current == 20 and q.progress() == "0 of 7 reviewed"
    assert q.previous() is None and q.current == 20
    q.mark_reviewed()
    assert q.next_unreviewed() == 7
    q.mark_reviewed()
    assert q.next() == 11 and q.previous() == 7
    assert q.progress() == "2 of 7 reviewed"
    q.goto(6)
    assert q.next() is None and q.current == 5
    for i in range(len(q)):
        q.mark_reviewed(i)
    assert q.done and q.next_unreviewed() is None
    empty = ReviewQueue(np.zeros(0, np.int64))
    assert empty.current is None and empty.next() is None and empty.previous() is None


def test_category_changes_and_comparison(scored):
    cur = Curation(scored)
    cur.accept_suggestions((scored.obs[keys.CATEGORY] == "erroneous").to_numpy())
    before = scored.obs[keys.CATEGORY].copy()
    after = before.astype(str).to_numpy().copy()
    after[[7, 11, 20]] = "correct"
    after[0] = "ambiguous"
    scored.obs[keys.CATEGORY] = pd.Categorical(after, categories=list(keys.CATEGORIES))
    cmp = compare_categories(scored, before, cur)
    assert cmp.moved == 4 and cmp.n_edited == 3
    assert cmp.table.loc["erroneous"].tolist() == [4, 1, -3]
    assert cmp.table.loc["correct"].tolist() == [33, 35, 2]
    change = scored.obs[keys.CATEGORY_CHANGE]
    assert change.iloc[7] == "erroneous → correct" and change.iloc[0] == "correct → ambiguous"
    assert (change == keys.CHANGE_UNCHANGED).sum() == scored.n_obs - 4
    assert len(scored.uns[f"{keys.CATEGORY_CHANGE}_colors"]) == len(change.cat.categories)
    assert "4 of 40 cells changed category" in cmp.text()
    # a later training drops the comparison: it no longer describes the categories shown
    keys.drop_derived(scored)
    assert keys.CATEGORY_CHANGE not in scored.obs and keys.CATEGORY_BEFORE not in scored.obs
    assert list(category_changes(["correct"], ["correct"])) == ["unchanged"]
