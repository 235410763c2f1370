"""Training dynamics: napari-annotatability against the published Annotatability, side by side.

For each workload both implementations train the same network (the published depth-3 MLP) on
the same data for the same epochs with the same seed, each in a fresh process (clean timing
and peak memory).  Reported per workload:

* seconds and the time ratio (published / ours),
* the achieved fraction of this machine's float32 matmul peak, measured in the same run with
  a large matmul, counting the published architecture's arithmetic per epoch: one evaluation
  pass over all cells (forward) plus forward and backward for one epoch of draws (the backward
  needs no gradient of the input, exactly what autograd computes),
* the same fraction for the matrix products alone (the 3 forward and 5 backward GEMMs of each
  batch-256 step and the evaluation GEMMs, timed back to back with nothing else): the ceiling
  any implementation of this recipe reaches with these BLAS calls on this machine,
* memory: the rise of the process's peak resident memory during training, over what it held
  with the data loaded (the input matrix itself is not counted; a dense copy of it is).

Then the AUROC of detecting artificially flipped labels (10/20/30/40 %, several seeds) for both,
on ``scanpy.datasets.pbmc68k_reduced()``, on synthetic data and on a low-plex protein-like panel.

    python benchmarks/bench_training.py                 # full run (several minutes)
    python benchmarks/bench_training.py --smoke         # seconds: checks the script still works
    python benchmarks/bench_training.py --out docs/benchmarks-latest.md
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
import warnings

import numpy as np

N_CLASSES = 10


# ---------------------------------------------------------------------------------------------
# arithmetic and peak
def published_widths(d: int, n_classes: int) -> list[int]:
    return [d, int(d / 2), int(d / 4), n_classes]


def epoch_flops(n: int, d: int, n_classes: int) -> float:
    """FLOPs of one epoch of the published recipe (2 per multiply-add)."""
    w = published_widths(d, n_classes)
    macs = sum(a * b for a, b in zip(w[:-1], w[1:]))
    forward = 2.0 * macs * n
    backward = 2.0 * forward - 2.0 * w[0] * w[1] * n  # weight grads everywhere, input grads past layer 1
    return forward + forward + backward  # evaluation pass + training forward + training backward


def matmul_peak(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 matmul throughput (FLOP/s) of a large square matmul, all threads."""
    import torch

    a = torch.randn(size, size)
    b = torch.randn(size, size)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(3):
            a @ b
        best = max(best, 3 * 2.0 * size**3 / (time.perf_counter() - t))
    return best


def gemm_ceiling_seconds(n: int, d: int, n_classes: int, batch: int = 256, chunk: int = 4096) -> float:
    """Seconds per epoch of the matrix products alone, with nothing else around them.

    One epoch = the evaluation GEMMs over ``n`` cells in chunks plus, per batch of 256, the
    3 forward and 5 backward GEMMs of the training step (preallocated, no element-wise work,
    no Python between them beyond the calls).  No implementation of this recipe can be faster
    with these BLAS calls on this machine: it bounds the achievable fraction of peak.
    """
    import torch

    w = published_widths(d, n_classes)
    W = [torch.randn(a, b) / a**0.5 for a, b in zip(w[:-1], w[1:])]
    xb = torch.randn(batch, d)
    acts = [torch.empty(batch, b) for b in w[1:]]
    grads = [torch.empty(a, b) for a, b in zip(w[:-1], w[1:])]
    gs = [torch.randn(batch, b) for b in w[1:]]

    def step():
        h = xb
        for k in range(3):
            torch.mm(h, W[k], out=acts[k])
            h = acts[k]
        for k in (2, 1, 0):
            torch.mm((xb if k == 0 else acts[k - 1]).t(), gs[k], out=grads[k])
            if k > 0:
                torch.mm(gs[k], W[k].t())

    xc = torch.randn(chunk, d)

    def evaluate():
        h = xc
        for k in range(3):
            h = torch.mm(h, W[k])

    def best(fn, reps):
        for _ in range(3):
            fn()
        out = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(reps):
                fn()
            out = min(out, (time.perf_counter() - t) / reps)
        return out

    steps = -(-n // batch)
    return steps * best(step, 20) + (n / chunk) * best(evaluate, 3)


# ---------------------------------------------------------------------------------------------
# one timed run, in its own process
def _make(n, d, sparse, seed=0):
    from napari_annotatability.core import make_synthetic

    return make_synthetic(n, d, N_CLASSES, separation=2.5, sparse=sparse, seed=seed)


def _run_ours(adata, label, epochs, seed):
    from napari_annotatability import core

    t = time.perf_counter()
    # the published lr at the same epochs (plus our width floor): the engine compared like for like;
    # the adaptive recipe and the label-quality score are compared in bench_label_quality.py
    core.training_dynamics(adata, label, epochs=epochs, lr=1e-3, min_hidden=32, balanced=True, seed=seed, device="cpu")
    dt = time.perf_counter() - t
    return dt, adata.obs["annot_confidence"].to_numpy(), adata.obs["annot_variability"].to_numpy()


def _run_published(adata, label, epochs, seed):
    import random

    import torch
    from Annotatability import models

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        probs = models.follow_training_dyn_neural_net(
            adata, label, iterNum=epochs, lr=1e-3, momentum=0.9, device=torch.device("cpu"), batch_size=256
        )
        conf, var = models.probability_list_to_confidence_and_var(probs, n_obs=adata.n_obs, epoch_num=epochs)
        dt = time.perf_counter() - t
    return dt, np.asarray(conf), np.asarray(var)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _timed_child(impl, n, d, sparse, epochs, seed, queue):
    import gc

    warnings.simplefilter("ignore")
    adata = _make(n, d, sparse)
    fn = _run_ours if impl == "ours" else _run_published
    fn(_make(500, d, sparse), "label", 1, seed)  # warm up imports and kernels outside the timing
    gc.collect()
    base = _status_kib("VmRSS")
    exact = _reset_peak_rss()
    dt, _, _ = fn(adata, "label", epochs, seed)
    extra = (_status_kib("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) - base
    peak = matmul_peak()
    ceiling = gemm_ceiling_seconds(n, d, N_CLASSES) * epochs if impl == "ours" else float("nan")
    queue.put({"seconds": dt, "peak": peak, "extra": extra * 1024, "data": base * 1024, "ceiling": ceiling})


def timed(impl, n, d, sparse, epochs, seed=0):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_timed_child, args=(impl, n, d, sparse, epochs, seed, q))
    p.start()
    res = q.get()
    p.join()
    return res


# ---------------------------------------------------------------------------------------------
# flipped-label detection
def _flip(adata, fraction, seed):
    from napari_annotatability.core import flip_labels

    codes = adata.obs["label"].cat.codes.to_numpy().astype(np.int64)
    cats = adata.obs["label"].cat.categories
    noisy, flipped = flip_labels(codes, len(cats), fraction, seed)
    adata.obs["noisy"] = np.asarray(cats)[noisy]
    adata.obs["noisy"] = adata.obs["noisy"].astype("category")
    return flipped


def detection(dataset, make, rates, seeds, epochs):
    from napari_annotatability.core import auroc

    rows = []
    for rate in rates:
        for seed in seeds:
            res = {}
            for impl, fn in (("ours", _run_ours), ("published", _run_published)):
                adata = make()
                flipped = _flip(adata, rate, seed)
                _, conf, _ = fn(adata, "noisy", epochs, seed)
                res[impl] = auroc(-conf, flipped)
            rows.append((dataset, rate, seed, res["ours"], res["published"]))
    return rows


def _pbmc():
    import scanpy as sc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = sc.datasets.pbmc68k_reduced()
    adata.obs["label"] = adata.obs["bulk_labels"].astype("category")
    return adata


# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: check the script runs")
    ap.add_argument("--epochs", type=int, default=20, help="epochs of the timed workloads (default 20)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per noise rate for the AUROC (default 3)")
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--skip-auroc", action="store_true")
    ap.add_argument("--out", default=None, help="also write the markdown report to this file")
    args = ap.parse_args(argv)

    if args.smoke:
        workloads = [("smoke", 2000, 100, False)]
        epochs, seeds, rates, auc_epochs = 2, [0], [0.2], 3
    else:
        workloads = [
            ("small section", 5000, 500, False),
            ("large panel", 50000, 300, False),
            ("transcriptome", 20000, 2000, False),
            ("transcriptome, sparse CSR", 20000, 2000, True),
        ]
        epochs, seeds, rates, auc_epochs = args.epochs, list(range(args.seeds)), [0.1, 0.2, 0.3, 0.4], 50

    import torch

    lines = [
        "# Training benchmark: napari-annotatability vs published Annotatability 0.0.5",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {time.strftime('%Y-%m-%d %H:%M')}; command: "
        f"`python benchmarks/bench_training.py{' --smoke' if args.smoke else ''}`",
        "",
    ]
    if not args.skip_timing:
        lines += [
            f"## Time, matmul-peak fraction and memory ({epochs} epochs, batch 256, {N_CLASSES} classes, seed 0)",
            "",
            "| workload | cells × features | ours s | published s | ratio (published/ours) | ours % of peak | published % of peak | GEMMs alone % of peak | peak GFLOP/s | ours memory | published memory |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, n, d, sparse in workloads:
            ours = timed("ours", n, d, sparse, epochs)
            pub = timed("published", n, d, sparse, epochs)
            flops = epoch_flops(n, d, N_CLASSES) * epochs
            peak = max(ours["peak"], pub["peak"])
            row = (
                f"| {name} | {n} × {d} | {ours['seconds']:.2f} | {pub['seconds']:.2f} | "
                f"{pub['seconds'] / ours['seconds']:.1f}× | {100 * flops / ours['seconds'] / peak:.0f} % | "
                f"{100 * flops / pub['seconds'] / peak:.0f} % | {100 * flops / ours['ceiling'] / peak:.0f} % | "
                f"{peak / 1e9:.0f} | "
                f"{ours['extra'] / 2**20:.0f} MiB | {pub['extra'] / 2**20:.0f} MiB |"
            )
            lines.append(row)
            print(row, flush=True)
        lines.append("")
    if not args.skip_auroc:
        from napari_annotatability.core import make_synthetic

        # (name, maker, epochs): pbmc68k_reduced has 700 cells, 3 batches an epoch: it gets the
        # 150 epochs of the paper's PBMC notebook
        if args.smoke:
            datasets = [("pbmc68k_reduced (700 × 765)", _pbmc, auc_epochs),
                        ("synthetic (1000 × 50)", lambda: make_synthetic(1000, 50, 5, seed=11), auc_epochs)]
        else:
            datasets = [
                ("pbmc68k_reduced (700 × 765)", _pbmc, 150),
                ("synthetic (5000 × 500)", lambda: make_synthetic(5000, 500, 8, separation=2.0, seed=11), auc_epochs),
                ("protein-like panel (5000 × 12)",
                 lambda: make_synthetic(5000, 12, 6, latent_dim=6, separation=3.0, seed=12), auc_epochs),
            ]
        lines += [
            "## AUROC of finding artificially flipped labels by low confidence",
            "",
            "| dataset | epochs | noise | ours AUROC | published AUROC | ours − published |",
            "|---|---|---|---|---|---|",
        ]
        for name, make, n_epochs in datasets:
            rows = detection(name, make, rates, seeds, n_epochs)
            for rate in rates:
                sel = [r for r in rows if r[1] == rate]
                o = np.mean([r[3] for r in sel])
                p = np.mean([r[4] for r in sel])
                line = f"| {name} | {n_epochs} | {int(rate * 100)} % | {o:.3f} | {p:.3f} | {o - p:+.3f} |"
                lines.append(line)
                print(line, flush=True)
            o = np.mean([r[3] for r in rows])
            p = np.mean([r[4] for r in rows])
            line = (f"| {name} | {n_epochs} | **mean over rates and {len(seeds)} seed(s)** | **{o:.3f}** | "
                    f"**{p:.3f}** | **{o - p:+.3f}** |")
            lines.append(line)
            print(line, flush=True)
        lines.append("")
    report = "\n".join(lines)
    print()
    print(report)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
