"""A small legend for categorical colourings (napari has none)."""

from __future__ import annotations

import weakref

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

__all__ = ["CategoryLegend", "viewer_legend", "show_legend", "hide_legend"]


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

    def set_entries(self, title: str, colors: dict[str, str], counts: dict[str, int] | None = None) -> None:
        """Show ``colors`` (name -> hex) under ``title``, with optional ``counts``."""
        while self._grid.count():
            item = self._grid.takeAt(0)
            old = item.widget()
            if old is not None:
                old.setParent(None)  # off screen now, not at the next event-loop turn
                old.deleteLater()
        self._title.setText(title)
        counts = counts or {}
        self.entries = [(name, color, int(counts.get(name, 0))) for name, color in colors.items()]
        for row, (name, color, count) in enumerate(self.entries):
            swatch = QFrame()
            swatch.setFixedSize(14, 14)
            swatch.setStyleSheet(f"background-color: {color}; border: 1px solid #444;")
            self._grid.addWidget(swatch, row, 0)
            self._grid.addWidget(QLabel(name), row, 1)
            num = QLabel(str(count) if counts else "")
            num.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self._grid.addWidget(num, row, 2)


# One legend dock per viewer, shared by every widget that colours spots (kept here, not found
# by dock title): what it shows always matches the last categorical colouring.
_DOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def viewer_legend(viewer) -> CategoryLegend:
    """The viewer's legend widget (created, not yet docked, on first use)."""
    entry = _DOCKS.get(viewer)
    if entry is None:
        entry = _DOCKS[viewer] = {"legend": CategoryLegend(), "dock": None}
    return entry["legend"]


def show_legend(viewer, title: str, colors: dict[str, str], counts: dict[str, int] | None = None) -> None:
    """Fill the viewer's legend and make sure its dock is visible."""
    legend = viewer_legend(viewer)
    legend.set_entries(title, colors, counts)
    entry = _DOCKS[viewer]
    window = getattr(viewer, "window", None)
    if window is None or not hasattr(window, "add_dock_widget"):
        return
    if entry["dock"] is None:
        entry["dock"] = window.add_dock_widget(legend, name="Annotatability legend", area="right")
    entry["dock"].setVisible(True)


def hide_legend(viewer) -> None:
    """Hide the legend (the spots now use a colormap with napari's colorbar)."""
    entry = _DOCKS.get(viewer)
    if entry is not None and entry["dock"] is not None:
        entry["dock"].setVisible(False)
