"""The data map dock at 10^4 - 10^6 spots: time to open it, and to brush a lasso.

    xvfb-run -a python benchmarks/bench_datamap.py                 # 10^4, 10^5, 10^6 (about a minute)
    xvfb-run -a python benchmarks/bench_datamap.py --smoke         # seconds
    xvfb-run -a python benchmarks/bench_datamap.py --sizes 50000 --out table.md

For each size, a napari viewer (not shown) holds a Points layer of that many spots whose AnnData
has a confidence, a variability and a category per spot (an arch like the paper's data maps,
synthetic).  Columns:

* *open s*: ``DataMapWidget(viewer)`` -- it picks the layer and draws the map -- shown, until
  its canvas has rendered (Qt events processed until matplotlib's ``draw_event``);
* *mode*: ``raster`` (density, above ``RASTER_MIN`` spots) or ``scatter``;
* *scatter open s*: the same map forced into a scatter, for comparison (what the dock did before);
* *lasso s*: a 64-vertex lasso through the arch (``select_in_map``): which spots lie inside,
  selecting them on the napari layer, highlighting them in the map, until the canvas has
  rendered; *of which: napari selection s* is ``layer.selected_data = ...`` (napari's evented
  set, per spot), *inside-test s* the polygon test (bounding box first);
* *selected*: how many spots the lasso took, checked against ``Path.contains_points`` on every
  spot.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np


def _adata(n: int, seed: int = 0):
    import anndata as ad
    import pandas as pd

    from napari_annotatability.core import keys

    rng = np.random.default_rng(seed)
    conf = np.clip(rng.beta(4.0, 1.2, n), 0, 1)
    var = np.clip(np.sqrt(conf * (1 - conf)) * rng.uniform(0.2, 0.9, n), 0, None)
    cat = np.where((conf > 0.95) & (var < 0.15), "correct", np.where((conf < 0.3) & (var < 0.2), "erroneous",
                                                                     "ambiguous"))
    obs = pd.DataFrame({keys.CONFIDENCE: conf, keys.VARIABILITY: var,
                        keys.CATEGORY: pd.Categorical(cat, categories=list(keys.CATEGORIES))},
                       index=np.arange(n).astype(str))
    a = ad.AnnData(obs=obs)
    a.uns[f"{keys.CATEGORY}_colors"] = list(keys.CATEGORY_COLORS)
    a.obsm["spatial"] = rng.random((n, 2)) * 10_000
    return a


def _lasso(n_vertices: int = 64) -> np.ndarray:
    """An ellipse across the middle of the arch, as (variability, confidence) vertices."""
    t = np.linspace(0, 2 * np.pi, n_vertices, endpoint=False)
    return np.column_stack([0.2 + 0.12 * np.cos(t), 0.6 + 0.25 * np.sin(t)])


def _until_drawn(app, canvas, timeout: float = 60.0) -> None:
    """Process Qt events until the canvas has rendered (its ``draw_idle`` ran) and nothing is pending."""
    drawn = []
    cid = canvas.mpl_connect("draw_event", lambda _e: drawn.append(1))
    end = time.perf_counter() + timeout
    try:
        while not drawn and time.perf_counter() < end:
            app.processEvents()
        app.processEvents()
    finally:
        canvas.mpl_disconnect(cid)


def measure(viewer, app, n: int, scatter: bool) -> dict:
    from matplotlib.path import Path

    from napari_annotatability._napari import _datamap
    from napari_annotatability._napari._datamap import DataMapWidget

    adata = _adata(n)
    layer = viewer.add_points(adata.obsm["spatial"], size=5, name=f"spots {n}", metadata={"adata": adata})
    app.processEvents()
    out = {"n": n}
    t = time.perf_counter()
    dm = DataMapWidget(viewer)
    dm.resize(420, 460)
    dm.show()
    _until_drawn(app, dm.canvas)
    out["open"] = time.perf_counter() - t
    out["mode"] = "raster" if dm.raster else "scatter"
    assert dm.layer is layer
    verts = _lasso()
    t = time.perf_counter()
    inside = np.flatnonzero(Path(verts).contains_points(dm._xy))
    out["inside_all"] = time.perf_counter() - t
    xy, lo, hi = dm._xy, verts.min(0), verts.max(0)
    t = time.perf_counter()
    box = np.flatnonzero((xy[:, 0] >= lo[0]) & (xy[:, 0] <= hi[0]) & (xy[:, 1] >= lo[1]) & (xy[:, 1] <= hi[1]))
    box[Path(verts).contains_points(xy[box])]
    out["inside"] = time.perf_counter() - t
    napari_s = []
    real = _datamap.select_spots

    def timed(*a, **k):
        t0 = time.perf_counter()
        real(*a, **k)
        napari_s.append(time.perf_counter() - t0)

    _datamap.select_spots = timed
    try:
        t = time.perf_counter()
        picked = dm.select_in_map(verts)
        _until_drawn(app, dm.canvas)
        out["lasso"] = time.perf_counter() - t
    finally:
        _datamap.select_spots = real
    out["napari"] = sum(napari_s)
    assert np.array_equal(picked, inside) and layer.selected_data == set(inside.tolist())
    out["selected"] = int(picked.size)
    dm.clear_selection()
    _until_drawn(app, dm.canvas)
    if scatter:
        saved = _datamap.RASTER_MIN
        _datamap.RASTER_MIN = 10**12
        try:
            t = time.perf_counter()
            dm.redraw()
            _until_drawn(app, dm.canvas)
            out["scatter_open"] = time.perf_counter() - t
        finally:
            _datamap.RASTER_MIN = saved
    else:
        out["scatter_open"] = float("nan")
    dm.close()
    dm.deleteLater()
    viewer.layers.remove(layer)
    app.processEvents()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=None, help="comma-separated spot counts (default 10000,100000,1000000)")
    ap.add_argument("--no-scatter", action="store_true", help="skip the forced-scatter comparison")
    ap.add_argument("--smoke", action="store_true", help="10^4 and 6 x 10^4 spots only (seconds)")
    ap.add_argument("--out", default=None, help="also write the table (markdown) here")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    sizes = ([10_000, 60_000] if args.smoke else [10_000, 100_000, 1_000_000]) if args.sizes is None else \
        [int(s) for s in args.sizes.split(",") if s]

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_annotatability._napari._datamap import RASTER_BINS, RASTER_MIN

    viewer = napari.Viewer(show=False)
    app = QApplication.instance()
    measure(viewer, app, 2_000, scatter=False)  # warm-up: imports, first figure
    lines = [
        "# The data map dock: open and lasso times",
        "",
        f"raster above {RASTER_MIN} spots ({RASTER_BINS[0]} x {RASTER_BINS[1]} bins); command: "
        f"`xvfb-run -a python benchmarks/bench_datamap.py{' --smoke' if args.smoke else ''}`",
        "",
        "| spots | mode | open s | scatter open s | lasso s | of which: napari selection s | of which: inside-test s "
        "| inside-test on every spot s | selected |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        r = measure(viewer, app, n, scatter=not args.no_scatter)
        row = (f"| {r['n']} | {r['mode']} | {r['open']:.2f} | {r['scatter_open']:.2f} | {r['lasso']:.2f} | "
               f"{r['napari']:.2f} | {r['inside']:.3f} | {r['inside_all']:.3f} | {r['selected']} |")
        lines.append(row)
        print(row, flush=True)
    viewer.close()
    report = "\n".join(lines)
    print()
    print(report)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
