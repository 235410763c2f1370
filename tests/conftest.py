from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from napari_annotatability import core

os.environ.setdefault("QT_API", "pyqt6")

import napari_annotatability

#: small real inputs shipped as package data (BSD-3, notices beside them)
PACKAGE_DATA = Path(napari_annotatability.__file__).resolve().parent / "_data"


@pytest.fixture
def synthetic():
    """2000 cells x 100 genes, 5 types, 5 % planted mislabels, 5 % intermediate cells."""
    return core.make_synthetic(2000, 100, 5, separation=3.0, seed=3)


@pytest.fixture(scope="session")
def pbmc():
    import scanpy as sc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sc.datasets.pbmc68k_reduced()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _display_available() -> bool:
    import os
    import shutil

    return bool(os.environ.get("DISPLAY")) or shutil.which("Xvfb") is not None


#: widget and screenshot tests need OpenGL on a display; pytest-xvfb provides one when Xvfb is installed
needs_display = pytest.mark.skipif(
    not _display_available(),
    reason="needs a display for OpenGL: install Xvfb and Mesa (apt-get install xvfb libgl1-mesa-dri) "
    "so that pytest-xvfb can start a virtual one",
)


def train_and_wait(widget, qtbot, epochs: int, *, calibrate: bool = True, timeout: int = 120_000) -> None:
    """Train the Annotatability widget for ``epochs`` (adaptive recipe off) and wait for the end."""
    widget.adaptive.value = False
    widget.epochs.value = epochs
    widget.calibrate.value = calibrate
    worker = widget.train(start=False)
    with qtbot.waitSignal(worker.finished, timeout=timeout):
        worker.start()
