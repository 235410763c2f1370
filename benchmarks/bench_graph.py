"""Trainability-aware graph: ours against the published ``make_conf_graph``, and ours at scale.

Each run is a fresh process (clean time and peak memory).  Data: a 50-component Gaussian
mixture standing in for PCA space, confidence uniform in [0, 1], seed 0, k = 15, alpha = 0.9.

* 2 k - 15 k cells: both implementations; time ratio, peak memory (rise of the process's peak
  RSS over the data), and the agreement of our k-neighbour sets with the published ones.
* 100 k, 200 k and 1 M cells: ours alone; time and memory, and seconds / (n log n) to show the growth.

Above 20 000 cells ours runs NN-descent, numba code compiled once per machine and cached on disk.
The script points ``NUMBA_CACHE_DIR`` at an empty temporary folder and first times that one-off
compilation (a process with the empty cache) and then the load (a second process), both printed
above the table; the *fresh process* column is then a new process with the cache in place -- what
every run after the first one on a machine costs.  The ``warm`` column is the same call a second
time in that process.

    python benchmarks/bench_graph.py               # full (about 10 minutes)
    python benchmarks/bench_graph.py --smoke       # about a minute (the one-off numba compilation)
    python benchmarks/bench_graph.py --out docs/benchmarks-graph.md
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

from bench_training import _reset_peak_rss, _status_kib

K = 15
ALPHA = 0.9
DIMS = 50


def _data(n: int, seed: int = 0):
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(12, DIMS))
    lab = rng.integers(0, 12, n)
    rep = (centres[lab] + rng.normal(size=(n, DIMS))).astype(np.float32)
    conf = rng.random(n).astype(np.float32)
    a = ad.AnnData(np.zeros((n, 1), dtype=np.float32), obs=pd.DataFrame(index=np.arange(n).astype(str)))
    a.obsm["X_pca"] = rep
    a.obs["conf"] = conf
    a.obs["annot_confidence"] = conf
    return a


def _child(impl: str, n: int, queue) -> None:
    import gc

    warnings.simplefilter("ignore")
    a = _data(n)
    # import everything first: the memory column is the computation's, not the libraries'
    if impl == "published":
        from Annotatability.metrics import make_conf_graph
    else:
        from napari_annotatability.core import _nndescent, graph, keys  # noqa: F401
    gc.collect()
    base = _status_kib("VmRSS")
    _reset_peak_rss()
    t = time.perf_counter()
    if impl == "published":
        _, dist = make_conf_graph(a, alpha=ALPHA, k=K)
        seconds = time.perf_counter() - t
        sets = np.argsort(dist, axis=-1)[:, 1 : K + 1]
        warm = float("nan")
    else:
        graph.trainability_graph(a, alpha=ALPHA, n_neighbors=K)
        seconds = time.perf_counter() - t
        D = a.obsp[keys.DISTANCES]
        sets = None
        if n <= 20_000:
            sets = np.empty((n, K), dtype=np.int64)
            for i in range(n):
                lo, hi = D.indptr[i], D.indptr[i + 1]
                sets[i] = D.indices[lo:hi][np.argsort(D.data[lo:hi], kind="stable")][:K]
        t = time.perf_counter()
        graph.trainability_graph(a, alpha=ALPHA, n_neighbors=K)
        warm = time.perf_counter() - t
    extra = (_status_kib("VmHWM") - base) * 1024
    queue.put({"seconds": seconds, "warm": warm, "memory": extra, "sets": sets})


def _compile_child(queue) -> None:
    """Seconds of the first NN-descent call in this process (imports excluded): compile or cache load."""
    warnings.simplefilter("ignore")
    from napari_annotatability.core import _nndescent

    Z = np.random.default_rng(0).normal(size=(3000, DIMS + 1)).astype(np.float32)
    t = time.perf_counter()
    _nndescent.nn_descent(Z, 30, DIMS, 0)
    queue.put({"seconds": time.perf_counter() - t})


def run(impl: str, n: int) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_compile_child if impl == "compile" else _child, args=(q,) if impl == "compile"
                    else (impl, n, q))
    p.start()
    res = q.get()
    p.join()
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    both = [2000] if args.smoke else [2000, 5000, 10000, 15000]
    alone = [] if args.smoke else [100_000, 200_000, 1_000_000]
    cache = tempfile.mkdtemp(prefix="bench-graph-numba-")
    os.environ["NUMBA_CACHE_DIR"] = cache  # inherited by the spawned children
    try:
        return _table(args, both, alone)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _table(args, both: list, alone: list) -> int:
    compiled, loaded = run("compile", 0)["seconds"], run("compile", 0)["seconds"]
    once = (f"NN-descent (above 20 000 cells): compiled once per machine in {compiled:.1f} s (a process with an "
            f"empty numba cache); every later process loads it in {loaded:.1f} s.")
    print(once, flush=True)
    lines = [
        "# Trainability-aware graph: napari-annotatability vs published make_conf_graph",
        "",
        f"k = {K}, alpha = {ALPHA}, {DIMS} components; command: `python benchmarks/bench_graph.py"
        f"{' --smoke' if args.smoke else ''}`",
        "",
        once,
        "",
        "| cells | ours s (fresh process) | ours s (warm) | published s | ratio (published / ours warm) | ours memory | published memory | neighbour agreement | ours warm s / (n log n) × 1e6 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in both + alone:
        ours = run("ours", n)
        pub = run("published", n) if n in both else None
        nlogn = ours["warm"] / (n * np.log(n)) * 1e6
        if pub is not None:
            agree = np.mean([len(set(a) & set(b)) / K for a, b in zip(ours["sets"], pub["sets"])])
            row = (f"| {n} | {ours['seconds']:.1f} | {ours['warm']:.2f} | {pub['seconds']:.1f} | "
                   f"{pub['seconds'] / ours['warm']:.0f}× | {ours['memory'] / 2**20:.0f} MiB | "
                   f"{pub['memory'] / 2**20:.0f} MiB | {100 * agree:.2f} % | {nlogn:.2f} |")
        else:
            row = (f"| {n} | {ours['seconds']:.1f} | {ours['warm']:.1f} | — | — | {ours['memory'] / 2**20:.0f} MiB | — | — | "
                   f"{nlogn:.2f} |")
        lines.append(row)
        print(row, flush=True)
    report = "\n".join(lines)
    print()
    print(report)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
