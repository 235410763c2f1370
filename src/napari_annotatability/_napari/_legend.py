"""A small legend for categorical colourings, and a colorbar for masks (napari has neither)."""

from __future__ import annotations

import re
import weakref

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

__all__ = ["CategoryLegend", "natural_order", "viewer_legend", "show_legend", "hide_legend", "show_colorbar", "gradient_css"]


class CategoryLegend(QWidget):
    """Colour swatches with category names and counts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("annotatability_legend")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        self._title = QLabel("")
        self._title.setStyleSheet("font-weight: bold;")
        outer.addWidget(self._title)
        self._grid = QGridLayout()
        self._grid.setHorizontalSpacing(8)
        outer.addLayout(self._grid)
        outer.addStretch(1)
        self.entries: list[tuple[str, str, int]] = []
        self.colorbar: tuple[str, tuple[float, float]] | None = None

    def _clear(self) -> None:
        while self._grid.count():
            item = self._grid.takeAt(0)
            old = item.widget()
            if old is not None:
                old.setParent(None)  # off screen now, not at the next event-loop turn
                old.deleteLater()

    def set_colorbar(self, title: str, colormap: str, limits: tuple[float, float]) -> None:
        """Show a horizontal colorbar of ``colormap`` from ``limits[0]`` to ``limits[1]``."""
        self._clear()
        self._title.setText(title)
        self.entries = []
        bar = QFrame()
        bar.setObjectName("annotatability_colorbar")
        bar.setFixedHeight(14)
        bar.setStyleSheet(f"background: {gradient_css(colormap)}; border: 1px solid #444;")
        self._grid.addWidget(bar, 0, 0, 1, 2)
        lo, hi = QLabel(f"{limits[0]:.3g}"), QLabel(f"{limits[1]:.3g}")
        hi.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._grid.addWidget(lo, 1, 0)
        self._grid.addWidget(hi, 1, 1)
        self.colorbar = (colormap, (float(limits[0]), float(limits[1])))

    def set_entries(self, title: str, colors: dict[str, str], counts: dict[str, int] | None = None) -> None:
        """Show ``colors`` (name -> hex) under ``title``, with optional ``counts``."""
        self._clear()
        self.colorbar = None
        self._title.setText(title)
        counts = counts or {}
        names = natural_order(list(colors))
        self.entries = [(name, colors[name], int(counts.get(name, 0))) for name in names]
        for row, (name, color, count) in enumerate(self.entries):
            swatch = QFrame()
            swatch.setFixedSize(14, 14)
            swatch.setStyleSheet(f"background-color: {color}; border: 1px solid #444;")
            self._grid.addWidget(swatch, row, 0)
            self._grid.addWidget(QLabel(name), row, 1)
            num = QLabel(str(count) if counts else "")
            num.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self._grid.addWidget(num, row, 2)


def _natural_key(name: str) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name) if part]


def natural_order(names: list[str]) -> list[str]:
    """``names`` in natural order (2 before 10) when they came sorted as text, else as given.

    A categorical column read from a file or made by ``astype('category')`` sorts its categories
    as text (0, 1, 10, 2); an order chosen on purpose (correct, ambiguous, erroneous) is kept.
    """
    names = [str(n) for n in names]
    if names != sorted(names):
        return names
    return sorted(names, key=_natural_key)


def gradient_css(colormap: str, stops: int = 11) -> str:
    """A Qt style-sheet linear gradient of a matplotlib colormap, left to right."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps[colormap]
    parts = ", ".join(f"stop:{i / (stops - 1):.2f} {to_hex(cmap(i / (stops - 1)))}" for i in range(stops))
    return f"qlineargradient(x1:0, y1:0, x2:1, y2:0, {parts})"


# One legend dock per viewer, shared by every widget that colours spots (kept here, not found
# by dock title): what it shows always matches the last categorical colouring.
_DOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _real(viewer):
    from ._model import real_viewer

    return real_viewer(viewer)


def viewer_legend(viewer) -> CategoryLegend:
    """The viewer's legend widget (created, not yet docked, on first use)."""
    viewer = _real(viewer)
    entry = _DOCKS.get(viewer)
    if entry is None:
        entry = _DOCKS[viewer] = {"legend": CategoryLegend(), "dock": None}
    return entry["legend"]


def _show_dock(viewer, legend: CategoryLegend) -> None:
    viewer = _real(viewer)
    entry = _DOCKS[viewer]
    window = getattr(viewer, "window", None)
    if window is None or not hasattr(window, "add_dock_widget"):
        return
    from ._layout import Scroll, fit_height

    if entry["dock"] is None:
        entry["body"] = Scroll(legend)  # a long list of labels scrolls
        entry["dock"] = window.add_dock_widget(entry["body"], name="Annotatability legend", area="right")
    fit_height(entry["body"])  # as tall as its entries (napari gives a new dock a share of the column)
    entry["dock"].setVisible(True)


def show_legend(viewer, title: str, colors: dict[str, str], counts: dict[str, int] | None = None) -> None:
    """Fill the viewer's legend and make sure its dock is visible."""
    legend = viewer_legend(viewer)
    legend.set_entries(title, colors, counts)
    _show_dock(viewer, legend)


def show_colorbar(viewer, title: str, colormap: str, limits: tuple[float, float]) -> None:
    """Show a colorbar in the viewer's legend dock (for masks: napari draws none for Labels)."""
    legend = viewer_legend(viewer)
    legend.set_colorbar(title, colormap, limits)
    _show_dock(viewer, legend)


def hide_legend(viewer) -> None:
    """Hide the legend (the spots now use a colormap with napari's colorbar)."""
    entry = _DOCKS.get(_real(viewer))
    if entry is not None and entry["dock"] is not None:
        entry["dock"].setVisible(False)
