"""What the screenshot scripts share: a person's click, a wait on Qt's event loop, saving a PNG.

Nothing here spins ``processEvents`` by hand: waits run a ``QEventLoop`` until a signal fires
or a timer runs out, as napari's own loop would.
"""

from __future__ import annotations

from pathlib import Path


def click(button) -> None:
    """A left mouse click on a Qt button (or any widget) through ``QTest``."""
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest

    if not button.isEnabled():
        raise RuntimeError(f"{button.text()!r} is greyed out")
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def wait(signal=None, ms: int = 400, timeout_ms: int = 900_000) -> None:
    """Run Qt's event loop until ``signal`` fires, or for ``ms`` milliseconds."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    if signal is not None:
        signal.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
    else:
        QTimer.singleShot(ms, loop.quit)
    loop.exec()


def save(viewer, path: Path, quantize: bool = True) -> None:
    """The whole window (docks and all) as a PNG, after the redraw has run."""
    from PIL import Image

    wait(ms=500)
    img = Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).convert("RGB")
    if quantize:
        img = img.quantize(colors=192, method=Image.Quantize.MEDIANCUT)
    img.save(path, optimize=True)
    print(f"wrote {path} ({img.size[0]} x {img.size[1]})")
