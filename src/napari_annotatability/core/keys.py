"""The results contract: every AnnData key the package reads or writes.

See ``docs/method.md`` for what each one means.  Widgets, the CLI and the tests use these
names, never string literals.
"""

from __future__ import annotations

__all__ = [
    "CONFIDENCE", "VARIABILITY", "CORRECTNESS", "AUM", "CATEGORY", "SUGGESTED_LABEL",
    "SUGGESTED_PROB", "LABEL_QUALITY", "OOS_CONFIDENCE", "OOS_PROBABILITIES", "COMMUNITY", "TRAJECTORY", "CONNECTIVITIES", "DISTANCES", "GENE_HIGH",
    "GENE_LOW", "GENE_MID", "UNS", "CATEGORIES", "OTHER_CONFIDENCE", "OTHER_VARIABILITY",
    "OTHER_TRAJECTORY", "UMAP", "SCORE_COLUMNS", "drop_derived", "package_version",
    "CURATION", "CURATED_SUFFIX", "curated_key", "EDIT_SOURCES", "CATEGORY_BEFORE", "CATEGORY_CHANGE",
    "CHANGE_UNCHANGED",
]

CONFIDENCE = "annot_confidence"
VARIABILITY = "annot_variability"
CORRECTNESS = "annot_correctness"
AUM = "annot_aum"
LABEL_QUALITY = "annot_label_quality"
OOS_CONFIDENCE = "annot_oos_confidence"
#: n_obs x classes: the cross-fitted networks' mean probability of every class (columns in the
#: order of ``uns['annotatability']['label_quality']['classes']``)
OOS_PROBABILITIES = "annot_oos_probabilities"
CATEGORY = "annot_category"
SUGGESTED_LABEL = "annot_suggested_label"
SUGGESTED_PROB = "annot_suggested_prob"
COMMUNITY = "annot_community"
TRAJECTORY = "annot_trajectory"
CONNECTIVITIES = "annot_connectivities"
UMAP = "X_annot_umap"
DISTANCES = "annot_distances"
GENE_HIGH = "annot_gene_high"
GENE_LOW = "annot_gene_low"
GENE_MID = "annot_gene_mid"
UNS = "annotatability"

# second annotation of the same cells, recorded under the same run
OTHER_CONFIDENCE = "annot_other_confidence"
OTHER_VARIABILITY = "annot_other_variability"
OTHER_TRAJECTORY = "annot_other_trajectory"

#: categories of ``obs['annot_category']``, in display order
CATEGORIES = ("correct", "ambiguous", "erroneous")
#: default colours of the categories (green, amber, red), as ``uns['annot_category_colors']``
CATEGORY_COLORS = ("#2ca02c", "#ff9f1c", "#d62728")

SCORE_COLUMNS = (CONFIDENCE, VARIABILITY, CORRECTNESS, AUM)

# curation (core.curation): edits never touch the annotation itself
#: uns: the edit log of every curated annotation (a dict holding a DataFrame, h5ad-safe)
CURATION = "annotatability_curation"
#: obs[f"{label_key}{CURATED_SUFFIX}"]: the curated copy of an annotation
CURATED_SUFFIX = "_curated"
#: where an edit came from: the suggested label accepted, a label picked by hand, many cells at once
EDIT_SOURCES = ("suggestion", "manual", "bulk")
#: obs: categories before the last retraining on curated labels, and how each cell's moved
CATEGORY_BEFORE = "annot_category_before"
CATEGORY_CHANGE = "annot_category_change"
#: the category of ``obs['annot_category_change']`` of cells whose category did not move
CHANGE_UNCHANGED = "unchanged"


def curated_key(label_key: str) -> str:
    """The obs column holding the curated copy of ``label_key``."""
    return f"{label_key}{CURATED_SUFFIX}"

_DERIVED_OBS = (CATEGORY, SUGGESTED_LABEL, SUGGESTED_PROB, COMMUNITY, OTHER_CONFIDENCE, OTHER_VARIABILITY,
                LABEL_QUALITY, OOS_CONFIDENCE, CATEGORY_BEFORE, CATEGORY_CHANGE)
_DERIVED_VAR = (GENE_HIGH, GENE_LOW, GENE_MID)
_DERIVED_OBSM = (OTHER_TRAJECTORY, UMAP, OOS_PROBABILITIES)
_DERIVED_OBSP = (CONNECTIVITIES, DISTANCES)


def drop_derived(adata) -> None:
    """Remove results computed from an earlier run's scores (they would no longer match)."""
    for k in _DERIVED_OBS:
        if k in adata.obs:
            del adata.obs[k]
    for k in _DERIVED_VAR:
        if k in adata.var:
            del adata.var[k]
    for k in _DERIVED_OBSM:
        adata.obsm.pop(k, None)
    for k in _DERIVED_OBSP:
        adata.obsp.pop(k, None)
    for k in (f"{CATEGORY}_colors", f"{COMMUNITY}_colors", f"{CATEGORY_BEFORE}_colors", f"{CATEGORY_CHANGE}_colors"):
        adata.uns.pop(k, None)


def package_version() -> str:
    from .._version import __version__

    return __version__
