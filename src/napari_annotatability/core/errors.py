"""Exceptions and warnings of napari-annotatability."""

from __future__ import annotations

__all__ = ["AnnotatabilityError", "AnnotatabilityInputError", "RawCountsWarning", "TrainingCancelled"]


class AnnotatabilityError(Exception):
    """Base class of the package's errors."""


class AnnotatabilityInputError(AnnotatabilityError, ValueError):
    """Bad user input: a missing key, a wrong shape, an empty class, a non-finite matrix ..."""


class TrainingCancelled(AnnotatabilityError):
    """A training run was asked to stop before it finished; nothing was written."""


class RawCountsWarning(UserWarning):
    """The expression matrix looks like raw counts but was not normalised."""
