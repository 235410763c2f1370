"""napari-annotatability: find mis-annotated and ambiguous cells by how hard they are to learn.

The analysis lives in :mod:`napari_annotatability.core` (Qt-free); the napari plugin is a thin
shell over it.
"""

from ._version import __version__

__all__ = ["__version__"]
