"""The README's job N times in a row by clicks, on napari's own event loop; fail on any traceback.

    xvfb-run -a -s "-screen 0 1280x800x24" python scripts/demo_soak.py --runs 10

What a person does with ``napari-annotatability demo``, every run: click **Train** and wait for
the categories, click **Category**, **Data map** and **Curate**, **Start review**, **Accept** the
first suggestion, **Retrain on curated labels** and wait, then **Export cells...** (the save
dialog answered with a path) and read the file back.  Clicks are real mouse clicks
(``QTest.mouseClick``); napari's event loop (``napari.run``) runs everything, with the live
recolouring and the progress bar; nothing spins ``processEvents`` by hand.  Every exception that
reaches Qt (a slot that raised, a ``RecursionError`` from a re-entrant progress bar) is counted;
the script exits 1 if there was any, if a run did not finish or wrote no categories, or if the
export is missing what was done.  An abort (exit 134) is a failure too.  ``--train-only`` clicks
Train alone, run after run.  tests/test_demo_soak.py runs it in CI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=None, help="fixed epochs (default: the adaptive recipe, as shipped)")
    ap.add_argument("--train-only", action="store_true", help="only click Train, run after run")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds for all runs")
    a = ap.parse_args(argv)

    import anndata as ad
    import napari
    from qtpy.QtCore import Qt, QTimer
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication, QFileDialog

    from napari_annotatability._napari._demo import open_demo
    from napari_annotatability.core import keys

    errors: list[str] = []
    hook = sys.excepthook
    out_dir = Path(tempfile.mkdtemp(prefix="annotatability-soak-"))
    exports = iter(out_dir / f"run{i}.h5ad" for i in range(1, a.runs + 1))
    QFileDialog.getSaveFileName = staticmethod(lambda *_a, **_k: (str(next(exports)), ""))  # the dialog, answered

    def record(kind, value, tb):
        errors.append("".join(traceback.format_exception(kind, value, tb)))
        hook(kind, value, tb)

    viewer, widget = open_demo()
    viewer.window.resize(1280, 800)
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    if a.epochs is not None:
        widget.adaptive.value = False
        widget.epochs.value = a.epochs
    app = QApplication.instance()
    done: list[float] = []
    started = time.perf_counter()
    state = {"t0": 0.0, "step": "train", "curation": None}

    def click(button) -> None:
        if not button.isEnabled():
            raise RuntimeError(f"run {len(done) + 1}: {button.text()!r} is greyed out")
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)

    def later(func, ms: int = 200) -> None:  # a person's next click comes after the redraw
        QTimer.singleShot(ms, func)

    def fail(message: str) -> None:
        errors.append(f"run {len(done) + 1}: {message}")
        later(app.quit)

    def click_train() -> None:
        sys.excepthook = record  # napari.run installed its own hook: record, then let it report
        state["t0"] = time.perf_counter()
        state["step"] = "train"
        click(widget.train_button)
        if not widget.is_training:
            fail("the click on Train started no training")

    def trained() -> None:
        if keys.CATEGORY not in adata.obs or layer.metadata.get("color_by") != keys.CATEGORY:
            return fail("a training finished without colouring the spots by category")
        if a.train_only:
            return end_of_run()
        if state["step"] == "retrain":
            return later(export)
        later(inspect)

    def inspect() -> None:
        click(widget.color_buttons["Category"])
        click(widget.dock_buttons["Data map"])
        click(widget.dock_buttons["Curate"])
        _, cur = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability curation")
        state["curation"] = cur
        later(review)

    def review() -> None:
        cur = state["curation"]
        click(cur.start_button)
        if cur.queue is None or not len(cur.queue):
            return fail("the review queue is empty after a training")
        state["cell"] = cur.queue.current
        click(cur.buttons["accept"])
        state["step"] = "retrain"
        later(lambda: click(cur.buttons["retrain"]))

    def export() -> None:
        click(widget.export_button)
        path = out_dir / f"run{len(done) + 1}.h5ad"
        if not path.exists():
            return fail(f"Export cells... wrote no {path.name}")
        back = ad.read_h5ad(path)
        curated = keys.curated_key("label")
        if curated not in back.obs or keys.CATEGORY_CHANGE not in back.obs:
            return fail("the exported file lacks the curated labels or the category change")
        end_of_run()

    def end_of_run() -> None:
        done.append(time.perf_counter() - state["t0"])
        print(f"run {len(done)}: {done[-1]:.1f} s, {widget.status.text()}", flush=True)
        if len(done) >= a.runs or errors:
            later(app.quit)
        else:
            later(click_train)

    def give_up() -> None:
        errors.append(f"timed out after {a.timeout:.0f} s with {len(done)} of {a.runs} runs done")
        app.quit()

    def guarded(func):
        def run():
            try:
                func()
            except Exception:  # noqa: BLE001 - counted and reported, then stop
                errors.append(traceback.format_exc())
                app.quit()
        return run

    click_train, trained, inspect, review, export, end_of_run = map(
        guarded, (click_train, trained, inspect, review, export, end_of_run))
    def finished() -> None:
        if not state.pop("results", False):
            fail(f"a training ended without results: {widget.status.text()}")

    widget.trained.connect(lambda _adata: (state.update(results=True), later(trained)))
    widget.training_finished.connect(finished)
    QTimer.singleShot(500, click_train)
    QTimer.singleShot(int(a.timeout * 1000), give_up)
    napari.run()
    job = "trainings" if a.train_only else "runs of the README job"
    print(f"{len(done)} of {a.runs} {job} in {time.perf_counter() - started:.0f} s; "
          f"{len(errors)} exception(s) or failure(s)")
    for e in errors:
        print(e, file=sys.stderr)
    return 0 if not errors and len(done) == a.runs else 1


if __name__ == "__main__":
    sys.exit(main())
