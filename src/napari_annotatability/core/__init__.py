"""Qt-free engine of napari-annotatability: usable from notebooks, scripts and the CLI.

Functions follow scanpy's convention: they take an AnnData, write results under documented
keys (:mod:`napari_annotatability.core.keys`) and return None.
"""

from . import inputs, keys, platforms
from .categories import (
    auroc,
    calibrate_thresholds,
    categories_from_scores,
    categorize,
    erroneous_cutoff,
    flip_labels,
    iter_calibrate_thresholds,
)
from .correction import iter_suggest_labels, suggest_labels
from .curation import Curation, CurationComparison, ReviewQueue, compare_categories, review_order
from .dynamics import (
    DynamicsResult,
    EpochProgress,
    compare_annotations,
    iter_training_dynamics,
    training_dynamics,
)
from .errors import (
    AnnotatabilityError,
    AnnotatabilityInputError,
    DivergenceWarning,
    RawCountsWarning,
    TrainingCancelled,
    TrainingDiverged,
)
from .genes import gene_association, gene_scores, mid_indicator, top_genes
from .graph import communities, trainability_graph, trainability_umap
from .io import read_h5ad, write_h5ad
from .labels import annotation_columns, annotation_problem
from .platforms import ACCEPTED, detect, read_sdata, read_table, table_from_sdata
from .pipeline import ScoreResult, iter_score, score, summary, suspicious_cells
from .preprocess import looks_like_counts, preprocess
from .regions import RegionSummary, region_summary
from .rules import (
    AMBIGUOUS_QUANTILE,
    AMBIGUOUS_SECOND,
    AMBIGUOUS_VARIABILITY,
    ERRONEOUS_PERCENTILE,
    ERRONEOUS_PRECISION,
    RULES,
    ambiguous_cutoff,
    categories_from_signals,
    describe_categories,
    second_probability,
)
from .synthetic import make_synthetic, make_synthetic_tissue

__all__ = [
    "keys", "inputs", "platforms", "ACCEPTED", "detect", "read_sdata", "read_table", "table_from_sdata", "TrainingDiverged", "DivergenceWarning", "auroc", "calibrate_thresholds", "categories_from_scores", "categorize", "erroneous_cutoff", "flip_labels", "iter_calibrate_thresholds",
    "iter_suggest_labels", "suggest_labels", "DynamicsResult", "EpochProgress", "compare_annotations",
    "iter_training_dynamics", "training_dynamics", "AnnotatabilityError", "AnnotatabilityInputError",
    "RawCountsWarning", "TrainingCancelled", "gene_association", "gene_scores", "mid_indicator", "top_genes",
    "read_h5ad", "write_h5ad", "ScoreResult", "iter_score", "score", "summary", "suspicious_cells", "looks_like_counts", "preprocess",
    "make_synthetic", "make_synthetic_tissue", "RegionSummary", "region_summary", "communities", "trainability_graph", "trainability_umap",
    "RULES", "ERRONEOUS_PERCENTILE", "ERRONEOUS_PRECISION", "AMBIGUOUS_QUANTILE", "AMBIGUOUS_SECOND", "AMBIGUOUS_VARIABILITY", "categories_from_signals",
    "describe_categories", "second_probability", "ambiguous_cutoff",
    "Curation", "CurationComparison", "ReviewQueue", "compare_categories", "review_order",
    "annotation_columns", "annotation_problem",
]
