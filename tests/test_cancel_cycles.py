"""Train, cancel, train again -- twenty times in one viewer: no crash, no leaked thread or memory."""

from __future__ import annotations

import gc
import threading
import tracemalloc

import pytest

pytest.importorskip("napari")

from conftest import needs_display, train_and_wait  # noqa: E402

from napari_annotatability.core import keys  # noqa: E402

pytestmark = [needs_display, pytest.mark.slow]  # every test trains through the widget

CYCLES = 20


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _live(cls_name: str) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == cls_name)


def test_twenty_train_cancel_cycles_leak_nothing(make_napari_viewer, qtbot):
    from qtpy.QtCore import QThreadPool

    from napari_annotatability._napari._demo import open_demo

    viewer, widget = open_demo(make_napari_viewer(show=True))  # shown: vispy flushes its uploads on draw
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    widget.adaptive.value = False
    widget.epochs.value = 1000  # never reaches the end: each cycle is cancelled
    widget.calibrate.value = True
    samples = []
    rss_between = []  # after cycles 10 and 15
    for cycle in range(CYCLES):
        seen = []
        worker = widget.train(start=False)

        def cancel_soon(p, seen=seen, after=1 + cycle % 3):  # cancel after 1-3 epochs
            seen.append(p.stage)
            if len(seen) == after:
                widget.cancel()

        worker.yielded.connect(cancel_soon)
        with qtbot.waitSignal(worker.finished, timeout=60_000):
            worker.start()
        qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=10_000)
        assert not widget.is_training and widget.train_button.isEnabled(), cycle
        assert "Cancelled" in widget.status.text()
        assert keys.CONFIDENCE not in adata.obs  # a cancelled run writes nothing
        del worker
        if cycle in (9, 14):
            gc.collect()
            rss_between.append(_rss_mib())
        if cycle in (4, CYCLES - 1):
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] / 2**20 if tracemalloc.is_tracing() else 0.0
            samples.append({"cycle": cycle + 1, "rss": _rss_mib(), "traced": traced,
                            "threads": threading.active_count(), "objects": len(gc.get_objects()),
                            "models": _live("LeanMLP"), "running_generators": sum(
                                1 for o in gc.get_objects() if type(o).__name__ == "generator" and o.gi_frame
                                and o.gi_code.co_name in ("run", "iter_score", "iter_training_dynamics"))})
            tracemalloc.start()  # Python and numpy allocations from here on (torch's are not traced)
    first, last = samples
    print(f"\nafter {first['cycle']} cycles: {first}\nafter {last['cycle']} cycles: {last}")
    assert last["threads"] <= first["threads"]  # no thread left behind by a cancelled run
    # no network, no suspended training generator (and so no trajectory, no batch) outlives its run;
    # napari's task-status list keeps each finished worker object, but it holds nothing of ours
    # (compared with cycle 5: earlier tests in the same process may have left objects of their own)
    assert last["models"] <= first["models"] and last["running_generators"] <= first["running_generators"]
    assert last["traced"] < 2, samples  # Python + numpy memory still held after 15 more cycles
    # 15 more cycles: no steady growth.  A leak grows every five cycles; the allocator now and then
    # maps a new arena for a worker thread (a one-off step of tens of MiB on a long test session),
    # so the middle of the three five-cycle steps is what is judged
    rss = [first["rss"], *rss_between, last["rss"]]
    steps = sorted(b - a for a, b in zip(rss, rss[1:]))
    assert 3 * steps[1] < 40 and last["rss"] - first["rss"] < 120, (rss, samples)
    # and the viewer still trains to the end
    tracemalloc.stop()
    train_and_wait(widget, qtbot, 3, calibrate=False)
    assert keys.CONFIDENCE in adata.obs and keys.CONFIDENCE in layer.features
