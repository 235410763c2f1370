"""A small legend for categorical colourings (napari has none)."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

__all__ = ["CategoryLegend"]


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
