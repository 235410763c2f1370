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


def click(qtbot, button) -> None:
    """A left click on a Qt button, as a person's (Qt's ``clicked(checked)`` and all)."""
    from qtpy.QtCore import Qt

    assert button.isEnabled(), f"{button.text()!r} is greyed out"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def train_and_wait(widget, qtbot, epochs: int | None, *, calibrate: bool = True, timeout: int = 180_000) -> None:
    """Click Train on the Annotatability widget and wait, under Qt's event loop, for the end.

    ``epochs`` turns the adaptive recipe off (None keeps the widget's recipe).  Fails when the
    click starts no training (the wait for ``training_finished`` then times out).
    """
    if epochs is not None:
        widget.adaptive.value = False
        widget.epochs.value = epochs
    widget.calibrate.value = calibrate
    with qtbot.waitSignal(widget.training_finished, timeout=timeout):
        click(qtbot, widget.train_button)
        assert widget.is_training, "the click on Train started no training"
