"""Train the demo N times by clicking Train, on napari's own event loop; fail on any traceback.

    xvfb-run -a python scripts/demo_soak.py --runs 10

What a person does with ``napari-annotatability demo``: the window opens, Train is clicked (a
real mouse click, ``QTest.mouseClick``), napari's event loop (``napari.run``) runs the training
with its live recolouring and progress bar, and when it has finished, Train is clicked again.
Nothing here spins ``processEvents`` by hand.  Every exception that reaches Qt (a slot that
raised, a ``RecursionError`` from a re-entrant progress bar) is counted; the script exits 1 if
there was any, if a run did not finish, or if a run ended without categories.  An abort (exit
134) is a failure too.  tests/test_demo_soak.py runs it in CI.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=None, help="fixed epochs (default: the adaptive recipe, as shipped)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds for all runs")
    a = ap.parse_args(argv)

    import napari
    from qtpy.QtCore import Qt, QTimer
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication

    from napari_annotatability._napari._demo import open_demo
    from napari_annotatability.core import keys

    errors: list[str] = []
    hook = sys.excepthook

    def record(kind, value, tb):
        errors.append("".join(traceback.format_exception(kind, value, tb)))
        hook(kind, value, tb)

    viewer, widget = open_demo()
    viewer.window.resize(1280, 800)
    adata = widget.layer_combo.value.metadata["adata"]
    if a.epochs is not None:
        widget.adaptive.value = False
        widget.epochs.value = a.epochs
    done: list[float] = []
    started = time.perf_counter()
    state = {"t0": 0.0}

    def click_train() -> None:
        sys.excepthook = record  # napari.run installed its own hook: record, then let it report
        state["t0"] = time.perf_counter()
        QTest.mouseClick(widget.train_button, Qt.MouseButton.LeftButton)
        if not widget.is_training:
            errors.append(f"run {len(done) + 1}: the click on Train started no training")
            QApplication.instance().quit()

    def finished() -> None:
        done.append(time.perf_counter() - state["t0"])
        ok = keys.CATEGORY in adata.obs and widget.layer_combo.value.metadata.get("color_by") == keys.CATEGORY
        print(f"run {len(done)}: {done[-1]:.1f} s, {widget.status.text()}", flush=True)
        if not ok:
            errors.append(f"run {len(done)}: finished without colouring the spots by category")
        if len(done) >= a.runs or errors:
            QTimer.singleShot(200, QApplication.instance().quit)
        else:
            QTimer.singleShot(200, click_train)  # a person's next click, after the redraw

    def give_up() -> None:
        errors.append(f"timed out after {a.timeout:.0f} s with {len(done)} of {a.runs} runs done")
        QApplication.instance().quit()

    widget.training_finished.connect(finished)
    QTimer.singleShot(500, click_train)
    QTimer.singleShot(int(a.timeout * 1000), give_up)
    napari.run()
    print(f"{len(done)} of {a.runs} trainings in {time.perf_counter() - started:.0f} s; "
          f"{len(errors)} exception(s) or failure(s)")
    for e in errors:
        print(e, file=sys.stderr)
    return 0 if not errors and len(done) == a.runs else 1


if __name__ == "__main__":
    sys.exit(main())
