"""Opening and recolouring single-cell platform sections in napari: Xenium-sized masks, Visium HD bins.

    xvfb-run -a python benchmarks/bench_platforms.py              # 500 000 cells on 40 000 px, 700 000 bins
    xvfb-run -a python benchmarks/bench_platforms.py --direct     # and napari's per-cell colormap beside it
    xvfb-run -a python benchmarks/bench_platforms.py --busy 1     # with another process keeping a core busy
    xvfb-run -a python benchmarks/bench_platforms.py --smoke      # seconds: 20 000 cells on 4 000 px
    xvfb-run -a python benchmarks/bench_platforms.py --only xenium --cells 100000 --side 16000

Inputs are SpatialData stores written once with spatialdata's models into the benchmark cache
(``~/.cache/napari-annotatability/bench-data/platforms``; tens of seconds to minutes the first time):

* *xenium*: a 1-channel uint16 morphology image and its cell mask, both pyramids of 3 levels
  (scale factors 4, 4: 40 000, 10 000 and 2 500 px a side), in µm (0.2125 µm per pixel, as Xenium),
  cells on a jittered grid as discs, cell circles indexed by cell id (as spatialdata-io writes them),
  a table of n cells x 50 genes (sparse counts) annotating the mask;
* *visium_hd*: 8 µm square bins on a grid (n bins), as polygons annotated by the table, with a
  low-resolution H&E-like image, as spatialdata-io writes a Visium HD section.

Each size runs in a fresh process (under Xvfb, software OpenGL) that times what a user waits for:

* *open s*: ``read_sdata`` + ``table_from_sdata`` + ``sdata_layer_data`` + adding the layers to a
  shown viewer, until the first frame is drawn (a screenshot);
* *recolour s*: colouring every cell by a new score at full view (``color_by`` on the Labels layer of
  cells) until drawn; the median of 3, each with new values;
* *peak RSS GB*: the process's peak resident memory (``ru_maxrss``), all of the above included;
* *hover ms*: what napari's status bar asks at every move of the cursor over a mask (the cell there
  and its value, read from the full-resolution mask: ``layer.get_status``): the first move, which
  reads the 1024-px window of the mask under the cursor, then the median of 60 moves of 3 pixels from there;
* *direct colormap s* (``--direct``): the alternative the plugin does not use -- the raw mask as a
  Labels layer given napari's ``DirectLabelColormap`` with one colour per cell id -- from building
  that colormap until drawn (measured after the figures above, so it does not inflate them).

Targets (issue 13): open < 15 s, recolour < 1 s, peak RSS < 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PIXEL_UM = 0.2125  # Xenium morphology image pixel size
N_GENES = 50


def cache_root() -> Path:
    base = os.environ.get("NAPARI_ANNOTATABILITY_BENCH_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "napari-annotatability" / "bench-data"
    return root / "platforms"


# -- inputs ---------------------------------------------------------------------------------------
def _cell_grid(n_cells: int, side: int):
    """(cells per row, pitch px) of a square grid of about ``n_cells`` cells on ``side`` px."""
    per_row = int(np.ceil(np.sqrt(n_cells)))
    return per_row, side / per_row


def _mask_block(block_info=None, *, per_row: int, pitch: float, seed: int = 0):
    """Cell ids of one block: discs of radius ~0.4 pitch around jittered grid centres (0 outside)."""
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    rows = np.arange(r0, r1, dtype=np.float64)
    cols = np.arange(c0, c1, dtype=np.float64)
    gi = np.minimum((rows // pitch).astype(np.int64), per_row - 1)
    gj = np.minimum((cols // pitch).astype(np.int64), per_row - 1)
    # deterministic jitter per grid cell
    jr = ((gi * 7919 + seed) % 101) / 101.0 - 0.5
    jc = ((gj * 6271 + seed) % 97) / 97.0 - 0.5
    cr = (gi + 0.5 + 0.2 * jr) * pitch
    cc = (gj + 0.5 + 0.2 * jc) * pitch
    dr = rows - cr
    dc = cols - cc
    inside = dr[:, None] ** 2 + dc[None, :] ** 2 <= (0.4 * pitch) ** 2
    ids = (gi[:, None] * per_row + gj[None, :] + 1).astype(np.uint32)
    return np.where(inside, ids, np.uint32(0))


def write_xenium_like(path: Path, n_cells: int, side: int, seed: int = 0) -> Path:
    """A SpatialData store like a Xenium section: morphology pyramid, cell mask pyramid, table."""
    import anndata as ad
    import dask.array as da
    import pandas as pd
    import scipy.sparse as sp
    import spatialdata as sd
    from spatialdata.models import Image2DModel, Labels2DModel, ShapesModel, TableModel
    from spatialdata.transformations import Identity, Scale

    per_row, pitch = _cell_grid(n_cells, side)
    chunk = 4096
    chunks = ((chunk,) * (side // chunk) + ((side % chunk,) if side % chunk else ()),) * 2
    mask = da.map_blocks(_mask_block, chunks=chunks, dtype=np.uint32, per_row=per_row, pitch=pitch, seed=seed)
    image = (mask.map_blocks(lambda b: np.where(b > 0, 2000 + (b % 1500), 300).astype(np.uint16),
                             dtype=np.uint16))[None]
    to_um = Scale([PIXEL_UM, PIXEL_UM], axes=("y", "x"))
    images = {"morphology_focus": Image2DModel.parse(image, dims=("c", "y", "x"), scale_factors=[4, 4],
                                                     chunks=(1, chunk, chunk), c_coords=["DAPI"],
                                                     transformations={"global": to_um})}
    labels = {"cell_labels": Labels2DModel.parse(mask, dims=("y", "x"), scale_factors=[4, 4],
                                                 chunks=(chunk, chunk), transformations={"global": to_um})}
    n = per_row * per_row
    # cell circles indexed by cell id, as spatialdata-io writes Xenium's (centroids without a pass over the mask)
    gi, gj = np.divmod(np.arange(n), per_row)
    jr = ((gi * 7919 + seed) % 101) / 101.0 - 0.5
    jc = ((gj * 6271 + seed) % 97) / 97.0 - 0.5
    centres = np.column_stack([((gj + 0.5 + 0.2 * jc) * pitch + 0.5) * PIXEL_UM,
                               ((gi + 0.5 + 0.2 * jr) * pitch + 0.5) * PIXEL_UM])
    circles = ShapesModel.parse(centres, geometry=0, radius=np.full(n, 0.4 * pitch * PIXEL_UM),
                                index=pd.Index(np.arange(1, n + 1, dtype=np.int64)),
                                transformations={"global": Identity()})
    counts = sp.random(n, N_GENES, density=0.1, format="csr", random_state=seed, dtype=np.float32)
    counts.data = np.ceil(counts.data * 20)
    group = (np.arange(n) // per_row * 4 // per_row) * 4 + (np.arange(n) % per_row * 4 // per_row)
    obs = pd.DataFrame({"cell_id": np.arange(1, n + 1, dtype=np.int64), "region": "cell_labels",
                        "cell_type": pd.Categorical([f"type{g}" for g in group])},
                       index=[f"cell{i}" for i in range(n)])
    obs["region"] = obs["region"].astype("category")
    table = TableModel.parse(ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(N_GENES)])),
                             region="cell_labels", region_key="region", instance_key="cell_id")
    return _write(sd.SpatialData(images=images, labels=labels, shapes={"cell_circles": circles},
                                 tables={"table": table}), path)


def write_visium_hd_like(path: Path, n_bins: int, bin_um: float = 8.0, seed: int = 0) -> Path:
    """A SpatialData store like a Visium HD section at one bin size: square bins, table, H&E image."""
    import anndata as ad
    import dask.array as da
    import geopandas as gpd
    import pandas as pd
    import scipy.sparse as sp
    import shapely
    import spatialdata as sd
    from spatialdata.models import Image2DModel, ShapesModel, TableModel
    from spatialdata.transformations import Identity, Scale

    per_row = int(np.ceil(np.sqrt(n_bins)))
    n = per_row * per_row
    i, j = np.divmod(np.arange(n), per_row)
    x0, y0 = j * bin_um, i * bin_um
    boxes = shapely.box(x0, y0, x0 + bin_um, y0 + bin_um)
    name = f"hd_square_{int(bin_um):03d}um"
    shapes = ShapesModel.parse(gpd.GeoDataFrame(geometry=boxes, index=pd.RangeIndex(n)),
                               transformations={"global": Identity()})
    counts = sp.random(n, N_GENES, density=0.05, format="csr", random_state=seed, dtype=np.float32)
    counts.data = np.ceil(counts.data * 10)
    group = (i * 4 // per_row) * 4 + (j * 4 // per_row)
    obs = pd.DataFrame({"location_id": np.arange(n, dtype=np.int64), "region": name,
                        "cluster": pd.Categorical([f"c{g}" for g in group])},
                       index=[f"s_{int(bin_um):03d}um_{a:05d}_{b:05d}-1" for a, b in zip(i, j)])
    obs["region"] = obs["region"].astype("category")
    table = TableModel.parse(ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=[f"g{k}" for k in range(N_GENES)])),
                             region=name, region_key="region", instance_key="location_id")
    side_um = per_row * bin_um
    img_px = 6000
    yy = da.arange(img_px, chunks=2048)[:, None]
    xx = da.arange(img_px, chunks=2048)[None, :]
    tissue = (170 + 40 * da.sin(yy / 97.0) * da.cos(xx / 131.0)).astype(np.uint8)  # smooth, compressible
    rgb = da.stack([tissue, tissue - 40, tissue + 20])
    images = {"hd_hires_image": Image2DModel.parse(rgb, dims=("c", "y", "x"), c_coords=["r", "g", "b"],
                                                   transformations={"global": Scale([side_um / img_px] * 2,
                                                                                    axes=("y", "x"))})}
    return _write(sd.SpatialData(images=images, shapes={name: shapes}, tables={"table": table}), path)


def _write(sdata, path: Path) -> Path:
    tmp = path.with_name(path.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdata.write(tmp)
    tmp.rename(path)
    return path


def dataset(kind: str, size: int, side: int) -> Path:
    """The cached store for ``kind`` at ``size`` (written on first use)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    if kind == "xenium":
        path = root / f"xenium_{size}_{side}px_v2.zarr"  # v2: with cell circles
        if not path.exists():
            write_xenium_like(path, size, side)
    else:
        path = root / f"visium_hd_{size}.zarr"
        if not path.exists():
            write_visium_hd_like(path, size)
    return path


# -- measurement (in a fresh process) ---------------------------------------------------------------
def measure(path: Path, direct: bool = False) -> dict:
    """Open ``path`` in a shown viewer and recolour its cells; seconds and peak RSS."""
    import resource

    warnings.simplefilter("ignore")
    import napari
    from napari.layers import Layer
    from qtpy.QtWidgets import QApplication

    from napari_annotatability._napari._colors import color_by, is_mask_layer
    from napari_annotatability._napari._sdata_layers import sdata_layer_data
    from napari_annotatability.core import keys
    from napari_annotatability.core.platforms import read_sdata, table_from_sdata

    viewer = napari.Viewer(show=True)
    QApplication.processEvents()
    start = time.perf_counter()
    sdata = read_sdata(path)
    t_read = time.perf_counter()
    adata = table_from_sdata(sdata)
    t_table = time.perf_counter()
    tuples = sdata_layer_data(sdata, adata, path.stem)
    t_layers = time.perf_counter()
    layers = [viewer.add_layer(Layer.create(*t)) for t in tuples]
    viewer.reset_view()
    viewer.screenshot(canvas_only=True, flash=False)
    open_s = time.perf_counter() - start
    stages = {"read": t_read - start, "table": t_table - t_read, "layer data": t_layers - t_table,
              "add + first draw": time.perf_counter() - t_layers}
    cells = [lyr for lyr in layers if is_mask_layer(lyr)] or [lyr for lyr in layers if "adata" in lyr.metadata]
    if not cells:
        raise RuntimeError(f"no layer of cells among {[lyr.name for lyr in layers]}")
    layer = cells[0]
    rng = np.random.default_rng(0)
    times = []
    for _ in range(3):
        adata.obs[keys.CONFIDENCE] = rng.random(adata.n_obs).astype(np.float32)
        t = time.perf_counter()
        color_by(layer, adata, keys.CONFIDENCE)
        viewer.screenshot(canvas_only=True, flash=False)
        times.append(time.perf_counter() - t)
    # hovering: napari's status bar asks the layer what is under the cursor at every move; on a mask
    # the plugin names the cell there, read from the full-resolution mask: a path of 60 moves
    # of 3 pixels from a random cell's centre; the first one reads the window of the mask there
    hover_ms = None
    if is_mask_layer(layer):
        from napari_annotatability._napari._model import cell_model

        cell = cell_model(viewer).get(layer)
        start_at = cell.world_position(int(rng.integers(adata.n_obs)))
        steps = np.abs(np.asarray(layer.scale[-2:], dtype=float)) * 3
        hover = []
        for k in range(61):
            t = time.perf_counter()
            layer.get_status(start_at + k * steps, world=True)
            hover.append(time.perf_counter() - t)
        hover_ms = {"first": 1000 * hover[0], "median": 1000 * float(np.median(hover[1:]))}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB
    direct_s = None
    if direct and "mask" in layer.metadata:
        from napari.utils.colormaps import DirectLabelColormap

        mask = layer.metadata["mask"]
        layer.visible = False
        raw = viewer.add_labels(mask.levels if len(mask.levels) > 1 else mask.levels[0],
                                multiscale=len(mask.levels) > 1, affine=layer.affine.affine_matrix)
        viewer.screenshot(canvas_only=True, flash=False)
        rgba = rng.random((mask.n_obs, 4)).astype(np.float32)
        rgba[:, 3] = 1.0
        t = time.perf_counter()
        colors = {None: np.zeros(4, np.float32), 0: np.zeros(4, np.float32)}
        colors.update(zip(mask.cell_ids.tolist(), rgba))
        raw.colormap = DirectLabelColormap(color_dict=colors)
        viewer.screenshot(canvas_only=True, flash=False)
        direct_s = time.perf_counter() - t
    out = {"direct_s": direct_s, "stages": stages, "cells": int(adata.n_obs), "layers": [f"{type(lyr).__name__}:{lyr.name}" for lyr in layers],
           "open_s": open_s, "recolour_s": float(np.median(times)), "peak_rss_gb": peak,
           "layer_kind": type(layer).__name__, "hover_ms": hover_ms}
    viewer.close()
    return out


def run_case(kind: str, size: int, side: int, direct: bool = False, busy: int = 0) -> dict:
    t = time.perf_counter()
    path = dataset(kind, size, side)
    made = time.perf_counter() - t
    cmd = [sys.executable, __file__, "--measure", str(path)] + (["--direct"] if direct else [])
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        for p in spinners:
            p.kill()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"measuring {path.name} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(lines[-1])
    res.update(kind=kind, input=path.name, prepare_s=made)
    return res


def table(results: list[dict]) -> str:
    rows = ["| input | cells | shown as | open s | recolour s | peak RSS GB | meets (<15 s, <1 s, <4 GB) "
            "| hover ms: first, then a move | direct colormap s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ok = r["open_s"] < 15 and r["recolour_s"] < 1 and r["peak_rss_gb"] < 4
        rows.append(f"| {r['input']} | {r['cells']:,} | {r['layer_kind']} | {r['open_s']:.1f} | "
                    f"{r['recolour_s']:.2f} | {r['peak_rss_gb']:.2f} | {'yes' if ok else 'no'} | "
                    + ("-" if not r.get("hover_ms") else f"{r['hover_ms']['first']:.0f}, {r['hover_ms']['median']:.1f}")
                    + f" | {'-' if r.get('direct_s') is None else format(r['direct_s'], '.1f')} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), checks the script runs")
    ap.add_argument("--only", default="xenium,visium_hd", help="comma list of xenium, visium_hd")
    ap.add_argument("--cells", type=int, default=500_000, help="cells of the Xenium-like section")
    ap.add_argument("--side", type=int, default=40_000, help="pixels a side of its image and mask")
    ap.add_argument("--bins", type=int, default=700_000, help="8 um bins of the Visium HD-like section")
    ap.add_argument("--out", default=None, help="also write the table (markdown) here")
    ap.add_argument("--write-docs", action="store_true", help="rewrite the table's block in docs/benchmarks.md")
    ap.add_argument("--busy", type=int, default=0, help="other processes kept busy (one core each) meanwhile")
    ap.add_argument("--direct", action="store_true",
                    help="also time napari's DirectLabelColormap with one colour per cell (the alternative)")
    ap.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(Path(args.measure), direct=args.direct)), flush=True)
        return 0
    if args.smoke:
        args.cells, args.side, args.bins = 20_000, 4_000, 20_000
    results = []
    for kind in [k.strip() for k in args.only.split(",") if k.strip()]:
        size = args.cells if kind == "xenium" else args.bins
        res = run_case(kind, size, args.side, direct=args.direct, busy=args.busy)
        print(f"{kind}: {res['cells']:,} cells, open {res['open_s']:.1f} s, recolour {res['recolour_s']:.2f} s, "
              f"peak RSS {res['peak_rss_gb']:.2f} GB (input prepared in {res['prepare_s']:.0f} s); open = "
              + ", ".join(f"{k} {v:.1f} s" for k, v in res["stages"].items()), flush=True)
        results.append(res)
    text = table(results)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.write_docs and not args.smoke:
        from datetime import date

        from _docs import write_block

        command = ("xvfb-run -a python benchmarks/bench_platforms.py" + (" --direct" if args.direct else "")
                   + (f" --busy {args.busy}" if args.busy else ""))
        block = "bench_platforms" + ("_busy" if args.busy else "")
        write_block(HERE.parent / "docs" / "benchmarks.md", block,
                    f"`{command}` ({date.today().isoformat()}, {os.cpu_count()} cores, software OpenGL):\n\n{text}")
        print("rewrote the table in docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
