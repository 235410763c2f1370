"""Large sections in the viewer: load, colour, and stay responsive while training recolours live.

    xvfb-run -a python benchmarks/bench_viewer.py [--sizes 100000,1000000] [--train-max 100000]
    xvfb-run -a python benchmarks/bench_viewer.py --smoke
    xvfb-run -a python benchmarks/bench_viewer.py --sizes 100000 --busy 1   # a second process busy

For each size, a synthetic Visium-like section (``make_synthetic_tissue``, 50 genes) is opened
in a shown napari viewer through the plugin's reader path (``layer_data``), coloured by its
annotation, then -- up to ``--train-max`` spots -- trained with the dock widget (the default
pipeline; adaptive recipe) while a 10 ms QTimer heartbeat runs in the GUI thread.  A tick that
arrives late measures how long the GUI thread was blocked (a stall): the table gives the 50th,
95th and 99th percentile and the worst, over every tick during training, and how many epochs
recoloured the spots (the widget throttles live recolours on large layers: see
``_widget.live_interval``).  Above ``--train-max`` it times one live recolour instead.

``--busy N`` keeps N other processes spinning (one core each) while training, as on a shared
machine: the worker's torch threads then follow the load and leave the GUI thread a core.

Seconds include the draw: this machine renders with Mesa's software OpenGL (llvmpipe), where a
frame of 10^5 markers costs ~0.4 s; a GPU draws it in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings

import numpy as np


def _process(app, seconds: float = 0.0) -> None:
    """Run the event loop until everything posted (draws included) is done."""
    end = time.perf_counter() + seconds
    app.processEvents()
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)


def measure(n_spots: int, train: bool, epochs: int | None, calibrate: bool, busy: int = 0) -> dict:
    import napari
    from qtpy.QtCore import QEventLoop, QTimer
    from qtpy.QtWidgets import QApplication

    from napari_annotatability import core
    from napari_annotatability._napari._colors import color_by, sync_features
    from napari_annotatability._napari._spatial import layer_data
    from napari_annotatability._napari._widget import AnnotatabilityWidget
    from napari_annotatability.core import keys

    adata = core.make_synthetic_tissue(n_spots=n_spots, n_genes=50, seed=0)
    out = {"spots": adata.n_obs}
    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    _process(app, 0.2)
    t = time.perf_counter()
    for data, kwargs, kind in layer_data(adata, "section"):
        layer = getattr(viewer, f"add_{kind}")(data, **kwargs)
    out["load_s"] = time.perf_counter() - t
    _process(app)
    out["load_draw_s"] = time.perf_counter() - t
    t = time.perf_counter()
    color_by(layer, adata, "region")
    _process(app)
    out["colour_s"] = time.perf_counter() - t
    widget = AnnotatabilityWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Annotatability")
    _process(app, 0.2)
    if not train:
        conf = np.random.default_rng(0).random(adata.n_obs).astype(np.float32)
        t = time.perf_counter()
        sync_features(layer, adata, {keys.CONFIDENCE: conf})
        color_by(layer, adata, keys.CONFIDENCE)
        _process(app)
        out["first_live_s"] = time.perf_counter() - t
        t = time.perf_counter()
        sync_features(layer, adata, {keys.CONFIDENCE: conf[::-1].copy()})
        layer.refresh_colors(update_color_mapping=False)
        _process(app)
        out["recolour_s"] = time.perf_counter() - t
        viewer.close()
        return out

    widget.layer_combo.value = layer
    widget.label_combo.value = "label"
    widget.calibrate.value = calibrate
    if epochs is not None:
        widget.adaptive.value = False
        widget.epochs.value = epochs
    late: list[float] = []
    last = [time.perf_counter()]
    interval = 0.010

    def tick():
        now = time.perf_counter()
        late.append(max(0.0, now - last[0] - interval))
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(int(interval * 1000))
    heartbeat.timeout.connect(tick)
    loop = QEventLoop()
    epochs_seen = []
    worker = widget.train(start=False)
    worker.yielded.connect(lambda p: epochs_seen.append(p.stage))
    worker.finished.connect(loop.quit)
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        t = time.perf_counter()
        last[0] = t
        heartbeat.start()
        worker.start()
        loop.exec()
        heartbeat.stop()
    finally:
        for sp in spinners:
            sp.kill()
            sp.wait()
    out["train_s"] = time.perf_counter() - t
    out["epochs"] = len(epochs_seen)
    out["training_epochs"] = epochs_seen.count("training")
    out["recolours"] = widget.live_recolours
    out["live_cost_s"] = float(np.median(widget.live_costs)) if widget.live_costs else float("nan")
    arr = np.asarray(late) * 1000
    out.update(ticks=arr.size, p50_ms=float(np.percentile(arr, 50)), p95_ms=float(np.percentile(arr, 95)),
               p99_ms=float(np.percentile(arr, 99)), max_ms=float(arr.max()),
               blocked_share=float(arr[arr > 100].sum() / 1000 / out["train_s"]))
    ok = keys.CATEGORY in adata.obs or keys.CONFIDENCE in adata.obs
    out["finished"] = bool(ok)
    viewer.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000", help="spots per section, comma-separated")
    ap.add_argument("--train-max", type=int, default=100_000, help="train (with the heartbeat) up to this size")
    ap.add_argument("--epochs", type=int, default=None, help="fixed epochs (default: the adaptive recipe)")
    ap.add_argument("--no-calibrate", dest="calibrate", action="store_false")
    ap.add_argument("--busy", type=int, default=0, help="other processes kept busy (one core each) while training")
    ap.add_argument("--smoke", action="store_true", help="20 000 spots, 3 epochs, no calibration")
    ap.add_argument("--out", default=None, help="also write the markdown table to this file")
    args = ap.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        print("needs a display: run under xvfb-run -a (apt-get install xvfb libgl1-mesa-dri)", file=sys.stderr)
        return 2
    if args.smoke:
        args.sizes, args.epochs, args.calibrate = "20000", 3, False
    os.environ.setdefault("QT_API", "pyqt6")
    warnings.simplefilter("ignore")
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        r = measure(n, n <= args.train_max, args.epochs, args.calibrate, args.busy)
        print(r, flush=True)
        rows.append(r)
    lines = [
        f"command: `xvfb-run -a python benchmarks/bench_viewer.py{' --smoke' if args.smoke else ''}"
        f"{f' --busy {args.busy}' if args.busy else ''}`; Mesa llvmpipe (software OpenGL), {os.cpu_count()} cores"
        f"{f', {args.busy} other process(es) busy while training' if args.busy else ''}; "
        "heartbeat every 10 ms in the GUI thread",
        "",
        "| spots | open (layers + first draw) s | colour by annotation s | training s (epochs, recoloured) "
        "| GUI stall p50 / p95 / p99 / worst ms | time blocked > 100 ms | one live recolour s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "train_s" in r:
            train = f"{r['train_s']:.0f} ({r['epochs']}, {r['recolours']} of {r['training_epochs']})"
            stall = f"{r['p50_ms']:.0f} / **{r['p95_ms']:.0f}** / {r['p99_ms']:.0f} / {r['max_ms']:.0f}"
            blocked = f"{r['blocked_share']:.0%}"
            live = "—"
        else:
            train, stall, blocked = "not trained here", "—", "—"
            live = f"{r['recolour_s']:.1f} (first: {r['first_live_s']:.1f})"
        lines.append(f"| {r['spots']:,} | {r['load_draw_s']:.1f} | {r['colour_s']:.1f} | {train} | {stall} | "
                     f"{blocked} | {live} |")
    text = "\n".join(lines)
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
