"""Exceptions and warnings of napari-annotatability."""

from __future__ import annotations

__all__ = ["AnnotatabilityError", "AnnotatabilityInputError", "RawCountsWarning", "TrainingCancelled",
           "TrainingDiverged", "DivergenceWarning"]


class AnnotatabilityError(Exception):
    """Base class of the package's errors."""


class AnnotatabilityInputError(AnnotatabilityError, ValueError):
    """Bad user input: a missing key, a wrong shape, an empty class, a non-finite matrix ..."""


class TrainingCancelled(AnnotatabilityError):
    """A training run was asked to stop before it finished; nothing was written."""


class TrainingDiverged(AnnotatabilityInputError):
    """Training gave non-finite weights or scores, even after lowering the learning rate.

    Almost always input on the wrong scale (raw counts or intensities trained on as they are).
    """


class DivergenceWarning(UserWarning):
    """A training run diverged and was restarted with a smaller learning rate."""


class RawCountsWarning(UserWarning):
    """The expression matrix looks like raw counts but was not normalised."""
