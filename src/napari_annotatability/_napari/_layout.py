"""Where the plugin's docks go: the Inspect docks as tabs, the main window never past the screen.

napari stacks every new dock of an area under the ones there, and a ``QMainWindow`` grows until
its docks get their minimum heights: with six Inspect docks open the window grew past a 1000-px
screen and the canvas shrank to a strip.  Here the Inspect docks share one tab group: on a tall
screen (``TALL_SCREEN`` px available) it is split below the dock that opened them, elsewhere it is
a tab beside it.  Each dock's content scrolls (:class:`Scroll`), so no dock asks for more than the
screen, and :func:`fit_to_screen` keeps the window on it.  Only Qt's public ``QMainWindow`` /
``QDockWidget`` API is used on the docks napari returns.
"""

from __future__ import annotations

import weakref

from qtpy.QtCore import QEvent, QObject, QSize, Qt, QTimer
from qtpy.QtWidgets import QComboBox, QDockWidget, QFrame, QLabel, QScrollArea, QTabBar, QVBoxLayout, QWidget

from ._model import real_viewer

__all__ = ["PLUGIN", "TALL_SCREEN", "COLUMN_SHARE", "Scroll", "scrolling", "compact", "open_dock", "short_title",
           "fit_height", "fit_to_screen", "dock_of", "place_when_docked"]

PLUGIN = "napari-annotatability"
#: available screen height (px) from which the Inspect docks get a tab group of their own below
#: the dock that opened them; on a smaller screen they are tabs beside it.  The split needs the
#: training dock whole (~480 px), the group at its minimum (~340) and the legend (~140), with
#: title bars: at 1000 px the training dock scrolled
TALL_SCREEN = 1040
#: the share of the window's width the Inspect column is given (at least its docks' minimum): with
#: napari's own layer controls on the left (320 px), 0.22 leaves the canvas half of a 1280-px window
COLUMN_SHARE = 0.22
#: combo boxes show at least this many characters and may shrink to it (the full text is in the list)
COMBO_CHARS = 6
#: the most of the column the opening dock keeps when the group is split below it
OPENER_SHARE = 0.55

#: the tab text of each dock of the Inspect group
SHORT_TITLES = {
    "Annotatability data map": "Data map", "Annotatability genes": "Genes",
    "Annotatability communities": "Communities", "Annotatability spot inspector": "Spot",
    "Annotatability region inspector": "Region", "Annotatability curation": "Curation",
}

#: per viewer: the Inspect docks placed in the group (name -> QDockWidget)
_GROUPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Scroll(QScrollArea):
    """A frameless vertical scroll area that asks for its content's full size (and may get less)."""

    def __init__(self, inner: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(inner)
        inner.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        # the content's minimum grew (a label got more lines): Qt's resizable scroll area does not
        # hear of it and keeps the content at its old height, squeezing the rows over each other
        if obj is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            QTimer.singleShot(0, self._refit)
        return False

    def _refit(self) -> None:
        inner = self.widget()
        if inner is None:
            return
        need = inner.minimumSizeHint().height()
        if inner.height() < need:
            inner.resize(self.viewport().width(), max(need, self.viewport().height()))
        self.updateGeometry()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        inner = self.widget()
        if inner is None:
            return super().sizeHint()
        hint = inner.sizeHint()
        return QSize(hint.width() + self.verticalScrollBar().sizeHint().width(), hint.height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        inner = self.widget()
        width = inner.minimumSizeHint().width() if inner is not None else 0
        return QSize(width + self.verticalScrollBar().sizeHint().width(), 120)


def scrolling(dock: QWidget) -> QWidget:
    """Give ``dock`` a scrolling body: returns the inner widget to lay the dock's content out in."""
    inner = QWidget()
    outer = QVBoxLayout(dock)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(Scroll(inner))
    return inner


def compact(widget: QWidget) -> None:
    """Let every combo box under ``widget`` shrink to ``COMBO_CHARS`` characters.

    A ``QComboBox`` asks by default for the width of its longest item ("suspicious (erroneous,
    then ambiguous)", a long layer name), which sets the whole dock column's minimum width.
    """
    for combo in widget.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(COMBO_CHARS)


def dock_of(widget: QWidget | None) -> QDockWidget | None:
    """The dock widget that holds ``widget`` (None when it is not docked)."""
    w = widget
    while w is not None and not isinstance(w, QDockWidget):
        w = w.parentWidget()
    return w


def _real(obj):
    """The Qt object itself: napari hands a plugin's widgets its viewer, windows and docks behind a
    ``PublicOnlyProxy`` (a ``wrapt`` proxy); it unwraps a call's arguments, not the items of a list
    (``QMainWindow.resizeDocks`` takes lists)."""
    return getattr(obj, "__wrapped__", obj)


def _alive(dock) -> bool:
    try:
        return dock is not None and dock.parentWidget() is not None and not dock.isFloating()
    except RuntimeError:  # deleted (its dock was closed)
        return False


class _Group:
    """The Inspect docks of one viewer: name -> dock, and the dock they were split from (tall screens)."""

    def __init__(self) -> None:
        self.docks: dict = {}
        self.below = None

    def members(self, but: str) -> list:
        return [d for n, d in self.docks.items() if n != but and _alive(d)]


def open_dock(viewer, name: str, opener: QWidget | None = None):
    """Open (or show again) the plugin's dock ``name`` in the Inspect group; returns its widget.

    ``opener``: the widget whose button asked for it (the group is placed beside its dock).
    """
    window = getattr(viewer, "window", None)
    if window is None or not hasattr(window, "add_plugin_dock_widget"):
        return None
    group = _GROUPS.setdefault(real_viewer(viewer), _Group())
    dock, widget = window.add_plugin_dock_widget(PLUGIN, name)
    main = dock.parentWidget()
    if group.docks.get(name) is not dock and hasattr(main, "tabifyDockWidget"):
        opener_dock = dock_of(opener)
        _place(main, dock, group, name, opener_dock)
        if opener_dock is not None:
            opener_dock.setWindowTitle(_bare(opener_dock.windowTitle()))  # its tab: "Annotatability"
        group.docks[name] = dock
        _set_title(dock, name)
        _narrow(main, [d for d in (dock, opener_dock) if d is not None])
    dock.setVisible(True)
    dock.raise_()
    fit_to_screen(main)
    QTimer.singleShot(0, lambda: (fit_to_screen(main), _whole_tab_names(main)))  # once the layout has settled
    return widget


def _set_title(dock, name: str) -> None:
    """The short title on the dock's tab and on its title bar (napari's is "<name> (<plugin>)", which a
    narrow column cuts off); the whole name stays in the tooltip."""
    short = short_title(name)
    dock.setWindowTitle(short)
    bar = dock.titleBarWidget()
    for label in bar.findChildren(QLabel) if bar is not None else ():
        if label.text().startswith(name):
            label.setText(f"Annotatability: {short}")
            label.setToolTip(name)


def short_title(name: str) -> str:
    """The tab text of a dock: ``"Annotatability spot inspector"`` -> ``"Spot"``."""
    return SHORT_TITLES.get(name, name.removeprefix("Annotatability ").capitalize())


def _whole_tab_names(main) -> None:
    """Tabs of the Inspect group show their whole names and scroll (Qt elides them to "Ge...")."""
    ours = set(SHORT_TITLES.values())
    for bar in main.findChildren(QTabBar):
        if any(bar.tabText(i) in ours for i in range(bar.count())):
            bar.setElideMode(Qt.TextElideMode.ElideNone)
            bar.setUsesScrollButtons(True)


class _Adopt(QObject):
    """Places a dock that napari docked itself (*Plugins ▸ Annotatability ...*) in the Inspect group."""

    def __init__(self, widget: QWidget, viewer) -> None:
        super().__init__(widget)
        self._widget = widget
        self._viewer = viewer
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ParentChange and obj.parent() is not None:
            QTimer.singleShot(0, self._adopt)  # once napari has added the dock to its window
        return False

    def _adopt(self) -> None:
        try:
            dock = dock_of(self._widget)
        except RuntimeError:  # deleted meanwhile
            return
        if dock is None:
            return
        name = _bare(dock.windowTitle())
        group = _GROUPS.setdefault(real_viewer(self._viewer), _Group())
        main = dock.parentWidget()
        if name not in SHORT_TITLES or group.docks.get(name) is dock or not hasattr(main, "tabifyDockWidget"):
            return  # opened through open_dock (already placed), or not an Inspect dock
        from ._widget import training_widget

        opener = dock_of(training_widget(self._viewer))
        _place(main, dock, group, name, opener)
        if opener is not None:
            opener.setWindowTitle(_bare(opener.windowTitle()))
        group.docks[name] = dock
        _set_title(dock, name)
        _narrow(main, [d for d in (dock, opener) if d is not None])
        dock.raise_()
        QTimer.singleShot(0, lambda: (fit_to_screen(main), _whole_tab_names(main)))


def _bare(title: str) -> str:
    """A dock's title without napari's " (<plugin>)" (the package's name, or its display name)."""
    head, sep, tail = title.rpartition(" (")
    return head if sep and tail.endswith(")") else title


def place_when_docked(widget: QWidget, viewer) -> None:
    """However ``widget`` gets docked (an Inspect button, the Plugins menu), put it in the Inspect group."""
    _Adopt(widget, viewer)


def _place(main, dock, group: _Group, name: str, opener) -> None:
    members = group.members(name)
    if members:
        main.tabifyDockWidget(members[0], dock)
        if _alive(group.below):  # napari re-shared the column when it added the dock: split it again
            _split_sizes(main, group.below, dock)
        return
    if opener is None or opener is dock or not _alive(opener):
        return
    screen = main.screen().availableGeometry() if main.screen() is not None else None
    if screen is not None and screen.height() >= TALL_SCREEN:
        main.splitDockWidget(opener, dock, Qt.Orientation.Vertical)
        group.below = opener
        _split_sizes(main, opener, dock)
    else:
        main.tabifyDockWidget(opener, dock)


def _split_sizes(main, top, bottom, again: bool = True) -> None:
    """The dock above the group keeps what it asks for (at most ``OPENER_SHARE`` of the window).

    Done again once the layout has settled (the heights read now may be those before napari's
    own re-sharing of the column).
    """
    if again:
        QTimer.singleShot(0, lambda: _alive(top) and _alive(bottom) and _split_sizes(main, top, bottom, False))
    column = top.height() + bottom.height()
    keep = min(top.sizeHint().height(), int(main.height() * OPENER_SHARE))
    main.resizeDocks([_real(top), _real(bottom)], [keep, max(column - keep, bottom.minimumSizeHint().height())],
                     Qt.Orientation.Vertical)


def _narrow(main, docks: list) -> None:
    """Give the column of ``docks`` ``COLUMN_SHARE`` of the window's width (at least their minimum)."""
    need = max(d.minimumSizeHint().width() for d in docks)
    width = max(need, int(COLUMN_SHARE * main.width()))
    main.resizeDocks([_real(d) for d in docks], [width] * len(docks), Qt.Orientation.Horizontal)


def fit_height(body: QWidget) -> None:
    """Make a small dock's ``body`` (e.g. the legend's :class:`Scroll`) no taller than its content.

    Its dock then takes what its content asks for (a new dock is otherwise given a share of the
    column); a long list scrolls rather than growing the window.
    """
    body.setMaximumHeight(max(body.sizeHint().height() + 2, body.minimumSizeHint().height()))


def fit_to_screen(window: QWidget | None) -> None:
    """Shrink ``window`` (a top-level widget) to the screen's available size if it grew past it."""
    if window is None:
        return
    window = window.window()
    screen = window.screen()
    if screen is None:
        return
    avail = screen.availableGeometry()
    frame = window.frameGeometry()
    extra_w, extra_h = frame.width() - window.width(), frame.height() - window.height()
    width = min(window.width(), avail.width() - extra_w)
    height = min(window.height(), avail.height() - extra_h)
    if (width, height) != (window.width(), window.height()):
        window.resize(width, height)
