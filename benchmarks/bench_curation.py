"""Review-queue navigation at scale: one step of the curation dock, at 10^5 spots.

    xvfb-run -a python benchmarks/bench_curation.py                    # 100 000 spots, 30 steps
    xvfb-run -a python benchmarks/bench_curation.py --spots 20000 --steps 10   # smoke
    xvfb-run -a python benchmarks/bench_curation.py --busy 1 --write-docs      # a second process busy

A synthetic section (``make_synthetic_tissue``, 50 genes) opens in a shown napari viewer through
the plugin's layer path, with results that look like a training's (erroneous = the planted
mislabels, suggestion = the true region, a 30-epoch trajectory per spot; navigation does not
depend on the values, so no training is run).  The curation dock and the spot inspector are
docked; a review of the erroneous spots starts.  Then, per step:

* **next**: ``Next`` (centre and zoom on the next spot, select it, the inspector plots its
  trajectory, the dock describes it with its neighbours' labels);
* **accept**: ``Accept suggestion`` (the edit, the log, ``layer.features`` synced, then the step
  to the next spot);

each timed from the call until the event loop is idle again -- the canvas redraw and the
inspector's plot included (``draws`` counts the canvas redraws seen, to show they happened) --
and, as the baseline of what napari itself costs here, **pan**: the camera moved to another
spot and nothing else (the same redraw of 10^5 markers and of the window).
``--busy N`` keeps N other processes spinning (one core each) while the steps are timed, as on
a shared machine.  A second row docks the data map too (it highlights the selected spot among
10^5 spots: a matplotlib redraw per step; ``--no-datamap`` skips it).  This machine renders with
Mesa's software OpenGL (llvmpipe).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings

import numpy as np


def _idle(app, rounds: int = 4) -> None:
    for _ in range(rounds):
        app.processEvents()


def fake_results(adata, epochs: int = 30, seed: int = 0) -> None:
    """Results shaped like a training's (see the module docstring)."""
    import pandas as pd

    from napari_annotatability.core import keys

    rng = np.random.default_rng(seed)
    n = adata.n_obs
    mis = adata.obs["mislabelled"].to_numpy()
    amb = adata.obs["transition"].to_numpy() & ~mis
    cat = np.where(mis, "erroneous", np.where(amb, "ambiguous", "correct"))
    adata.obs[keys.CATEGORY] = pd.Categorical(cat, categories=list(keys.CATEGORIES))
    quality = np.where(mis, rng.random(n) * 0.1, 0.3 + 0.7 * rng.random(n)).astype(np.float32)
    adata.obs[keys.LABEL_QUALITY] = quality
    adata.obs[keys.CONFIDENCE] = quality
    adata.obs[keys.VARIABILITY] = (0.2 * rng.random(n)).astype(np.float32)
    adata.obs[keys.SUGGESTED_LABEL] = adata.obs["region"].copy()
    adata.obs[keys.SUGGESTED_PROB] = (0.5 + 0.5 * rng.random(n)).astype(np.float32)
    traj = np.clip(quality[:, None] + 0.05 * rng.normal(size=(n, epochs)), 0, 1).astype(np.float32)
    adata.obsm[keys.TRAJECTORY] = traj
    adata.uns[keys.UNS] = {"label_key": "label", "classes": list(adata.obs["label"].cat.categories)}


def measure(n_spots: int, steps: int, datamap: bool, busy: int = 0) -> dict:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_annotatability import core
    from napari_annotatability._napari._cells import view_camera
    from napari_annotatability._napari._colors import color_by
    from napari_annotatability._napari._curation import CurationWidget
    from napari_annotatability._napari._inspector import InspectorWidget
    from napari_annotatability._napari._spatial import layer_data
    from napari_annotatability.core import keys

    adata = core.make_synthetic_tissue(n_spots=n_spots, n_genes=50, seed=0)
    fake_results(adata)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 950)
    app = QApplication.instance()
    for data, kwargs, kind in layer_data(adata, "section"):
        layer = getattr(viewer, f"add_{kind}")(data, **kwargs)
    color_by(layer, adata, keys.CATEGORY)
    inspector = InspectorWidget(viewer)
    viewer.window.add_dock_widget(inspector, name="Annotatability spot inspector")
    if datamap:
        from napari_annotatability._napari._datamap import DataMapWidget

        viewer.window.add_dock_widget(DataMapWidget(viewer), name="Annotatability data map")
    widget = CurationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Annotatability curation")
    _idle(app, 20)
    draws = [0]
    try:  # count the canvas redraws (a private hook: the benchmark's, not the plugin's)
        viewer.window._qt_viewer.canvas._scene_canvas.events.draw.connect(lambda _e: draws.__setitem__(0, draws[0] + 1))
    except AttributeError:
        draws[0] = -1
    t = time.perf_counter()
    queue = widget.start_review("erroneous")
    _idle(app)
    out = {"spots": adata.n_obs, "queue": len(queue), "start_s": time.perf_counter() - t}

    def timed(action) -> tuple[float, float]:
        before = draws[0]
        t0 = time.perf_counter()
        action()
        t1 = time.perf_counter()
        _idle(app)
        return t1 - t0, time.perf_counter() - t0, draws[0] - before

    cells = iter(queue.cells[len(queue) // 2:].tolist())
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]

    def pan():  # napari alone: the camera moves to another spot, nothing else changes
        view_camera(viewer).center = tuple(float(v) for v in layer.data_to_world(layer.data[next(cells)])[-2:])

    try:
        for name, action in (("pan", pan), ("next", widget.next_cell), ("accept", widget.accept)):
            timed(action)  # warm-up
            handler, total, drawn = [], [], 0
            for _ in range(steps):
                h, s, d = timed(action)
                handler.append(h)
                total.append(s)
                drawn += max(d, 0)
            total_ms = np.asarray(total) * 1000
            out[f"{name}_ms"] = float(np.median(total_ms))
            out[f"{name}_p95_ms"] = float(np.percentile(total_ms, 95))
            out[f"{name}_max_ms"] = float(total_ms.max())
            out[f"{name}_handler_ms"] = float(np.median(handler) * 1000)
            out[f"{name}_draws"] = drawn
    finally:
        for p in spinners:
            p.kill()
    cell = queue.current
    centre = np.asarray(view_camera(viewer).center)[-2:]
    out["centred"] = bool(np.allclose(centre, layer.data_to_world(layer.data[cell])[-2:]))
    out["inspector"] = adata.obs_names[cell] in inspector.title.text()
    out["edits"] = widget.curation.n_edits
    viewer.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spots", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=30, help="timed steps of each kind")
    ap.add_argument("--no-datamap", dest="datamap", action="store_false",
                    help="skip the second row (the data map docked too)")
    ap.add_argument("--busy", type=int, default=0, help="other processes kept busy (one core each) meanwhile")
    ap.add_argument("--out", default=None, help="also write the markdown table to this file")
    ap.add_argument("--write-docs", action="store_true",
                    help="rewrite the table's block in docs/benchmarks.md (bench_curation, or bench_curation_busy)")
    ap.add_argument("--smoke", action="store_true", help="5 000 spots, 3 steps: checks that it runs")
    args = ap.parse_args(argv)
    if args.smoke:
        args.spots, args.steps, args.datamap = 5000, 3, False
    if not os.environ.get("DISPLAY"):
        print("needs a display: run under xvfb-run -a (apt-get install xvfb libgl1-mesa-dri)", file=sys.stderr)
        return 2
    os.environ.setdefault("QT_API", "pyqt6")
    warnings.simplefilter("ignore")
    rows = [measure(args.spots, args.steps, False, args.busy)]
    print(rows[-1], flush=True)
    if args.datamap:
        rows.append(measure(args.spots, args.steps, True, args.busy))
        rows[-1]["with"] = "data map"
        print(rows[-1], flush=True)
    command = (f"xvfb-run -a python benchmarks/bench_curation.py --spots {args.spots} --steps {args.steps}"
               f"{'' if args.datamap else ' --no-datamap'}{f' --busy {args.busy}' if args.busy else ''}")
    lines = [
        f"command: `{command}`; Mesa llvmpipe (software OpenGL), {os.cpu_count()} cores"
        f"{f', {args.busy} other process(es) busy' if args.busy else ''}; "
        "a step = the call until the event loop is idle (redraw and inspector plot included); median (p95, worst). "
        "Target (issue 14): next spot < 200 ms",
        "",
        "| spots | docks | next spot ms | accept + next ms | the dock's own work (next / accept) ms "
        "| napari alone: a bare pan ms | canvas redraws (next / accept) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        docks = "curation, spot inspector" + (", data map" if r.get("with") else "")
        lines.append(
            f"| {r['spots']:,} | {docks} | **{r['next_ms']:.0f}** ({r['next_p95_ms']:.0f}, {r['next_max_ms']:.0f}) | "
            f"{r['accept_ms']:.0f} ({r['accept_p95_ms']:.0f}, {r['accept_max_ms']:.0f}) | "
            f"**{r['next_handler_ms']:.0f}** / {r['accept_handler_ms']:.0f} | {r['pan_ms']:.0f} ({r['pan_p95_ms']:.0f}) | "
            f"{r['next_draws']} / {r['accept_draws']} |")
    text = "\n".join(lines)
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    if args.write_docs and not args.smoke:
        from datetime import date
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _docs import write_block

        write_block(Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md",
                    "bench_curation" + ("_busy" if args.busy else ""),
                    f"`{command}` ({date.today().isoformat()}, {os.cpu_count()} cores):\n\n{text}")
        print("rewrote the table in docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
