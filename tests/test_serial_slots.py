"""Worker slots that process events inside themselves do not nest (``_napari._serial``).

napari's progress bar calls ``QApplication.processEvents`` in ``setValue``: a slot that updates it
while the worker's next signals are queued runs them inside itself, and so on (the
``RecursionError`` a training met under load).  Here a worker thread emits faster than its slot
runs, and the slot processes events as napari's progress bar does.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("qtpy")
pytest.importorskip("pytestqt")

from napari_annotatability._napari._serial import SerialSlots  # noqa: E402


def _run(qtbot, wrap, n=200):
    from qtpy.QtCore import QObject, QThread, Signal
    from qtpy.QtWidgets import QApplication

    class Emitter(QObject):
        value = Signal(int)
        done = Signal()

    class Thread(QThread):
        def __init__(self, emitter):
            super().__init__()
            self.emitter = emitter

        def run(self):
            for i in range(n):
                self.emitter.value.emit(i)
            self.emitter.done.emit()

    state = {"depth": 0, "max": 0, "seen": []}

    def slot(i):
        state["depth"] += 1
        state["max"] = max(state["max"], state["depth"])
        state["seen"].append(i)
        time.sleep(0.001)  # a recolour's worth of work: the worker gets ahead
        QApplication.processEvents()  # what napari's QtLabeledProgressBar.setValue does
        state["depth"] -= 1

    emitter = Emitter()
    thread = Thread(emitter)
    emitter.value.connect(wrap(slot))
    with qtbot.waitSignal(emitter.done, timeout=20_000):
        thread.start()
    qtbot.waitUntil(lambda: state["depth"] == 0 and (state["seen"] and state["seen"][-1] == n - 1), timeout=20_000)
    thread.wait()
    return state


def test_without_serialising_the_slots_nest(qtbot):
    state = _run(qtbot, lambda f: f)
    assert state["max"] > 3  # the mechanism behind the RecursionError


def test_serialised_slots_never_nest_and_progress_keeps_the_latest(qtbot):
    serial = SerialSlots()
    state = _run(qtbot, lambda f: serial.wrap(f, coalesce=True))
    assert state["max"] == 1
    assert state["seen"] == sorted(state["seen"])  # in order; some skipped (only the latest is shown)


def test_a_slot_that_raises_does_not_drop_the_ones_queued_behind_it():
    serial = SerialSlots()
    ran = []

    def bad():
        serial.call(ran.append, ("finished",))  # queued behind this one, like worker.finished
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        serial.call(bad)
    assert ran == ["finished"]
    serial.close()
    serial.call(ran.append, ("late",))
    assert ran == ["finished"]  # closed: a worker's leftovers do not run
