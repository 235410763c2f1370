"""The demo with every Inspect dock open, at one screen size: a screenshot and a check that it fits.

    xvfb-run -a -s "-screen 0 1280x800x24" python docs/screenshots_layout.py 1280 800
    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/screenshots_layout.py 1920 1080

Everything is done by clicks (``QTest.mouseClick``) and waits on Qt's event loop: Train, then
every Inspect button, then *Start review* in the curation dock (its review mode, the tallest
state).  It prints the window and canvas sizes and every control whose text does not fit
(a label, button or check box narrower than its text, a wrapped label shorter than its lines),
saves ``docs/images/layout-<W>x<H>.png`` (or ``--out DIR``), and exits 1 when the window grew
past the screen, the canvas has less than half the window's width, or any text is cut off.
tests/test_layout.py runs it at both sizes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _wait(signal=None, ms: int = 300, timeout_ms: int = 600_000) -> None:
    """Run Qt's event loop until ``signal`` fires (or for ``ms``)."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    if signal is not None:
        signal.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
    else:
        QTimer.singleShot(ms, loop.quit)
    loop.exec()


def cut_off(root) -> list[str]:
    """Visible controls under ``root`` whose text does not fit them."""
    from qtpy.QtWidgets import QAbstractButton, QLabel

    out = []
    for w in root.findChildren(QLabel) + root.findChildren(QAbstractButton):
        if not w.isVisible() or not w.text() or w.width() <= 0:
            continue
        if isinstance(w, QLabel) and w.wordWrap():
            if w.hasHeightForWidth() and w.height() + 2 < w.heightForWidth(w.width()):
                out.append(f"{type(w).__name__} {w.text()[:40]!r}: {w.height()} px high, needs {w.heightForWidth(w.width())}")
            continue
        need = w.minimumSizeHint().width() if isinstance(w, QAbstractButton) else w.sizeHint().width()
        if w.width() + 1 < need:
            out.append(f"{type(w).__name__} {w.text()[:40]!r}: {w.width()} px wide, needs {need}")
    return out + overlaps(root)


def overlaps(root) -> list[str]:
    """Visible sibling controls drawn over each other (a layout that did not follow a change)."""
    from qtpy.QtWidgets import QAbstractButton, QComboBox, QLabel, QWidget

    kinds = (QLabel, QAbstractButton, QComboBox)
    out = []
    for parent in [root, *root.findChildren(QWidget)]:
        kids = [w for w in parent.children() if isinstance(w, kinds) and w.isVisible()]
        for i, a in enumerate(kids):
            for b in kids[i + 1:]:
                inter = a.geometry().intersected(b.geometry())
                if inter.width() > 2 and inter.height() > 2:
                    name = (a.text() if hasattr(a, "text") else "")[:30]
                    other = (b.text() if hasattr(b, "text") else "")[:30]
                    out.append(f"{type(a).__name__} {name!r} overlaps {type(b).__name__} {other!r}")
    return out


def canvas_widget(main):
    """The vispy canvas's Qt widget: the widest child of the central widget named *Canvas*."""
    from qtpy.QtWidgets import QWidget

    central = main.centralWidget()
    found = [w for w in central.findChildren(QWidget) if "Canvas" in type(w).__name__ and w.isVisible()]
    return max(found, key=lambda w: w.width() * w.height()) if found else central


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("width", type=int)
    ap.add_argument("height", type=int)
    ap.add_argument("--out", type=Path, default=HERE / "images")
    ap.add_argument("--epochs", type=int, default=10)
    a = ap.parse_args(argv)

    import napari
    from PIL import Image
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QDockWidget

    from napari_annotatability._napari._demo import open_demo
    from napari_annotatability._napari._widget import DOCKS

    def click(button):
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)

    viewer = napari.Viewer(show=True, title="napari-annotatability")
    viewer.window.resize(a.width, a.height)
    viewer, widget = open_demo(viewer)
    main_window = widget.window()
    main_window.showMaximized()
    _wait(ms=500)
    widget.adaptive.value = False
    widget.epochs.value = a.epochs
    click(widget.train_button)
    _wait(widget.training_finished)
    for text, _ in DOCKS:
        click(widget.dock_buttons[text])
        _wait(ms=200)
    _, curation = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability curation")
    click(curation.start_button)  # review mode: the curation dock at its tallest
    _wait(ms=800)

    screen = main_window.screen().availableGeometry()
    canvas = canvas_widget(main_window)
    problems = []
    window = (main_window.width(), main_window.height())
    print(f"screen {screen.width()} x {screen.height()}; window {window[0]} x {window[1]}; "
          f"canvas {canvas.width()} x {canvas.height()} ({canvas.width() / window[0]:.0%} of the width)")
    if window[0] > screen.width() or window[1] > screen.height():
        problems.append("the window grew past the screen")
    if canvas.width() < window[0] / 2:
        problems.append(f"the canvas has {canvas.width()} of {window[0]} px: less than half the window")
    for dock in main_window.findChildren(QDockWidget):
        if dock.isVisible() and dock.widget() is not None:
            for line in cut_off(dock.widget()):
                problems.append(f"{dock.windowTitle()}: {line}")
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"layout-{a.width}x{a.height}.png"
    img = Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).convert("RGB")
    img.quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"saved {path}")
    for p in problems:
        print("PROBLEM:", p)
    viewer.close()
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
