"""What every dock shares: its link to the viewer's cell model, cut when it closes, and a layer picker.

A dock connects to the model's signals through :class:`DockLink`, which disconnects them all when
the dock is closed (napari takes the widget out of its dock: its parent becomes None) or destroyed,
so a closed dock never runs again.  :class:`LayerPicker` is a combo box of the model's layers of
cells (optionally filtered), refilled when they change.
"""

from __future__ import annotations

from magicgui.widgets import ComboBox
from qtpy.QtCore import QEvent, QObject

from ._model import cell_model

__all__ = ["DockLink", "LayerPicker", "on_click", "refresh_on_open", "show_colouring"]


def on_click(button, func, *args, **kwargs) -> None:
    """Call ``func(*args, **kwargs)`` when ``button`` is clicked, without Qt's ``checked`` argument.

    ``clicked`` passes ``checked`` (False for a plain button).  Connected straight to a method
    whose first parameter has a default, it lands there: ``train(start=True)`` was called as
    ``train(False)`` and built a worker it never started.  Every button of the plugin connects
    through this adapter.
    """
    button.clicked.connect(lambda *_checked: func(*args, **kwargs))


class _OnOpen(QObject):
    """Calls ``refresh()`` just before a combo box's list opens (a click or a key on it)."""

    def __init__(self, combo, refresh) -> None:
        super().__init__(combo)
        self._refresh = refresh

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() in (QEvent.Type.MouseButtonPress, QEvent.Type.KeyPress):
            self._refresh()
        return False


def refresh_on_open(combo, refresh) -> None:
    """Refresh a (magicgui) combo box's choices whenever the user opens it.

    An AnnData does not say when a column is added to ``obs`` (from a notebook, an import): the
    list is brought up to date as it opens, so a new annotation is there without a reload.
    """
    native = getattr(combo, "native", combo)
    native.installEventFilter(_OnOpen(native, refresh))


class DockLink(QObject):
    """The connections of one dock widget to the viewer's :class:`~._model.CellModel`."""

    def __init__(self, widget, viewer) -> None:
        super().__init__(widget)
        self.model = cell_model(viewer)
        self.closed = False
        self._pairs: list[tuple] = []
        self._on_close: list = []
        self._docked = widget.parent() is not None
        widget.installEventFilter(self)
        pairs = self._pairs
        # destroyed: a plain function (not a method of this child object, which goes first)
        widget.destroyed.connect(lambda *_a: _disconnect(pairs))

    def connect(self, signal, slot) -> None:
        """Connect ``slot`` to a model ``signal`` until the dock closes."""
        if self.closed:
            return
        signal.connect(slot)
        self._pairs.append((signal, slot))

    def on_close(self, func) -> None:
        """Also call ``func()`` when the dock closes (e.g. to stop a worker or unbind keys)."""
        self._on_close.append(func)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        _disconnect(self._pairs)
        for func in self._on_close:
            func()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ParentChange:
            if obj.parent() is not None:
                self._docked = True
            elif self._docked:  # napari's remove_dock_widget (the dock's close button) unparents it
                self.close()
        return False


def _disconnect(pairs: list) -> None:
    while pairs:
        signal, slot = pairs.pop()
        try:
            signal.disconnect(slot)
        except (ValueError, RuntimeError, TypeError):
            pass


class LayerPicker:
    """A combo box of the viewer's layers of cells (napari layers as values).

    ``filters`` go to :meth:`CellModel.cells` (``require``, ``kind``, ``var``); ``prefer`` picks the
    default among the choices when the current one goes away.
    """

    def __init__(self, link: DockLink, label: str = "cells", prefer=None, **filters) -> None:
        self.model = link.model
        self.filters = filters
        self.prefer = prefer
        self.combo = ComboBox(label=label, choices=self._choices, nullable=True)

    def _choices(self, _widget=None) -> list:
        return self.model.layers(**self.filters)

    @property
    def value(self):
        return self.combo.value

    @value.setter
    def value(self, layer) -> None:
        self.combo.value = layer

    @property
    def cell(self):
        """The :class:`~._cells.CellLayer` picked (None: none)."""
        return self.model.get(self.combo.value)

    def refresh(self) -> bool:
        """Refill the choices (keeping the pick if it is still there); True if the pick changed."""
        before = self.combo.value
        self.combo.reset_choices()
        options = [c for c in self.combo.choices if c is not None]
        if self.combo.value is None and options:
            current = self.model.current
            preferred = [c for c in options if self.prefer is None or self.prefer(c)]
            if current is not None and current.layer in preferred:
                self.combo.value = current.layer
            else:
                self.combo.value = (preferred or options)[-1]
        return self.combo.value is not before


def show_colouring(viewer, cell, key: str, colors: dict | None) -> None:
    """The legend of a colouring: categories with their counts, or a colorbar with its title.

    A mask has no colorbar of napari's; spots on a colormap have napari's, without a title: the
    legend dock draws one, titled, for both.
    """
    from ._legend import hide_legend, show_colorbar, show_legend

    bar = cell.layer.metadata.get("colorbar")
    if colors is not None:
        show_legend(viewer, key, colors, cell.counts(key))
    elif bar:
        show_colorbar(viewer, key, bar["colormap"], tuple(bar["limits"]))
    else:
        hide_legend(viewer)
