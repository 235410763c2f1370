"""What a busy machine costs: ``core.score`` idle, beside one busy core, and at load ~4.

    python benchmarks/bench_contention.py                 # the table below (~15 min here)
    python benchmarks/bench_contention.py --shapes        # per-step time, 1 vs 2 threads, by layer width
    python benchmarks/bench_contention.py --smoke         # tiny sizes: checks that it runs
    python benchmarks/bench_contention.py --in-process --repeats 9   # idle cost, without process starts

Each measurement runs in a fresh process.  "Busy" processes are pure-Python spinners (one core
each), started just before the measured run and killed after it.  Two thread policies run side
by side: ``auto`` (the package's default: torch's thread count follows the load, see
``core/_threads.py``) and ``torch default`` (what torch does by itself: one thread per core,
fixed -- how the package ran before), so the ratios are comparable within one run.

Workloads are the issue's: the 5 000 x 200 synthetic set and a 50 000 x 300 panel, scored with
every default of ``core.score`` (genes off: the gene table is not training).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

WORKLOADS = {"synthetic 5 000 × 200": (5000, 200), "panel 50 000 × 300": (50000, 300)}
SMOKE_WORKLOADS = {"synthetic 600 × 40": (600, 40)}
#: condition -> number of busy spinners
CONDITIONS = {"idle": 0, "one busy core": 1, "load ~4 (3 busy)": 3}
#: policy -> environment for the child
POLICIES = {"auto": {}, "torch default": {"NAPARI_ANNOTATABILITY_THREADS": str(os.cpu_count() or 1)}}


def _child(n: int, g: int, epochs: int | None) -> None:
    import warnings

    from napari_annotatability import core
    from napari_annotatability.core.synthetic import make_synthetic

    from napari_annotatability.core import _threads

    # what the policy did, seen from outside: every thread count each training set, and the
    # time spent reading the load (the policy's only work beside torch's)
    used: set[int] = set()
    checks = [0.0]
    governor_set, sampler_others = _threads.ThreadGovernor._set, _threads._CpuSampler.others

    def _set(self, k):
        used.add(int(k))
        return governor_set(self, k)

    def _others(self):
        t0 = time.perf_counter()
        try:
            return sampler_others(self)
        finally:
            checks[0] += time.perf_counter() - t0

    _threads.ThreadGovernor._set, _threads._CpuSampler.others = _set, _others
    adata = make_synthetic(n, g, n_classes=6, seed=0)
    kw = {"epochs": epochs} if epochs else {}
    warnings.simplefilter("ignore")
    t = time.perf_counter()
    core.score(adata, "label", seed=0, genes=False, **kw)
    print(json.dumps({"seconds": time.perf_counter() - t, "threads": sorted(used), "checks_ms": checks[0] * 1e3}))


def _spinner() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def measure(n: int, g: int, busy: int, env_extra: dict, epochs: int | None) -> dict:
    spinners = [_spinner() for _ in range(busy)]
    try:
        time.sleep(0.5 if busy else 0.0)  # let them reach the scheduler
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        env.update(env_extra, PYTHONWARNINGS="ignore")
        cmd = [sys.executable, __file__, "--child", str(n), str(g)] + (["--epochs", str(epochs)] if epochs else [])
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        for s in spinners:
            s.kill()
            s.wait()


def in_process(out_lines: list[str], work: dict, repeats: int, epochs: int | None) -> None:
    """Idle only, in this one process: the policies alternate run by run on the same AnnData.

    Without a process start, an import and the data's creation in every measurement, the idle
    cost of the policy is not buried in their noise.  ``torch default`` is ``score(threads=)`` set
    to every core, as the environment variable does in the fresh-process table.
    """
    from napari_annotatability import core
    from napari_annotatability.core import _threads
    from napari_annotatability.core.synthetic import make_synthetic

    kw = {"epochs": epochs} if epochs else {}
    cores = _threads.available_cpus()
    out_lines += [f"`core.score` seconds idle, in one process, the two policies alternating (median of {repeats}; "
                  "genes off)", "", "| workload | auto | torch default (every core) | auto / torch default |",
                  "|---|---|---|---|"]
    for wname, (n, g) in work.items():
        adata = make_synthetic(n, g, n_classes=6, seed=0)
        core.score(adata.copy(), "label", seed=0, genes=False, epochs=2)  # warm-up
        times = {"auto": [], "torch default": []}
        for r in range(repeats):
            order = ("auto", "torch default") if r % 2 == 0 else ("torch default", "auto")
            for policy in order:
                a = adata.copy()
                t = time.perf_counter()
                core.score(a, "label", seed=0, genes=False, threads=None if policy == "auto" else cores, **kw)
                times[policy].append(time.perf_counter() - t)
            print(f"  [{r + 1}] {wname}: auto {times['auto'][-1]:.2f} s, torch default {times['torch default'][-1]:.2f} s",
                  flush=True)
        auto, fixed = float(np.median(times["auto"])), float(np.median(times["torch default"]))
        out_lines.append(f"| {wname} | {auto:.2f} s | {fixed:.2f} s | {auto / fixed:.3f} |")


def shapes(out_lines: list[str], smoke: bool) -> None:
    """Per-step time of one training step with 1 and 2 threads, by input width (idle)."""
    import torch

    from napari_annotatability.core._mlp import LeanMLP, hidden_widths
    from napari_annotatability.core._threads import step_flops

    widths = [20, 50] if smoke else [20, 50, 100, 200, 300, 500, 1000, 2000]
    steps = 20 if smoke else 200
    out_lines += ["| input width | multiply-adds per step | 1 thread (ms/step) | 2 threads (ms/step) | 2 threads gain |",
                  "|---|---|---|---|---|"]
    for f in widths:
        sizes = [f, *hidden_widths(f, 3, 32), 8]
        x = torch.randn(256, f)
        y = torch.randint(0, 8, (256,))
        per = {}
        for t in (1, 2):
            torch.set_num_threads(t)
            model = LeanMLP(sizes, lr=1e-3, momentum=0.9, generator=torch.Generator().manual_seed(0))
            for _ in range(5):
                model.train_step(x, y)
            t0 = time.perf_counter()
            for _ in range(steps):
                model.train_step(x, y)
            per[t] = (time.perf_counter() - t0) / steps * 1e3
        out_lines.append(f"| {f} | {step_flops(sizes, 256):.2e} | {per[1]:.3f} | {per[2]:.3f} | "
                         f"{per[1] / per[2]:.2f}× |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, type=int, metavar=("N", "G"), help=argparse.SUPPRESS)
    ap.add_argument("--epochs", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one condition")
    ap.add_argument("--shapes", action="store_true", help="only the per-step thread table")
    ap.add_argument("--in-process", action="store_true",
                    help="only the idle comparison, both policies alternating in this one process")
    ap.add_argument("--workloads", default=None, help=f"comma-separated among: {'; '.join(WORKLOADS)} (by index 0,1)")
    ap.add_argument("--policies", default=",".join(POLICIES), help=f"comma-separated among: {', '.join(POLICIES)}")
    ap.add_argument("--conditions", default=None, help=f"comma-separated among: {', '.join(CONDITIONS)}")
    ap.add_argument("--repeats", type=int, default=1, help="median of this many runs per cell")
    ap.add_argument("--out", default=None, help="also write the markdown here")
    args = ap.parse_args(argv)
    if args.child:
        _child(*args.child, args.epochs)
        return 0
    lines = [f"# What a busy machine costs ({os.cpu_count()} cores)", ""]
    work = SMOKE_WORKLOADS if args.smoke else WORKLOADS
    if args.workloads and not args.smoke:
        names = list(WORKLOADS)
        work = {names[int(i)]: WORKLOADS[names[int(i)]] for i in args.workloads.split(",")}
    if args.in_process:
        in_process(lines, work, max(1, args.repeats), 3 if args.smoke else None)
    elif args.shapes or args.smoke:
        shapes(lines, args.smoke)
        lines.append("")
    if not (args.shapes or args.in_process):
        conds = {"idle": 0, "one busy core": 1} if args.smoke else CONDITIONS
        if args.conditions and not args.smoke:
            conds = {c: CONDITIONS[c] for c in args.conditions.split(",")}
        policies = {p: POLICIES[p] for p in args.policies.split(",")}
        epochs = 3 if args.smoke else None
        lines += [f"`core.score` seconds (genes off; median of {max(1, args.repeats)}), and the ratio to the same "
                  "policy idle. Target: one busy core ≤ 2×, load ~4 ≤ 4×.", "",
                  "| workload | threads | " + " | ".join(conds) + " | thread counts set, idle | reading the load, idle |",
                  "|---|---|" + "---|" * len(conds) + "---|---|"]
        # repeats outermost, policies and conditions interleaved within each: a machine that drifts
        # (other tenants, thermal state) shifts every policy alike instead of the one measured last
        times: dict[tuple[str, str, str], list[float]] = {}
        seen: dict[tuple[str, str], list[dict]] = {}
        for r in range(max(1, args.repeats)):
            for wname, (n, g) in work.items():
                for pname, env in policies.items():
                    for cname, busy in conds.items():
                        res = measure(n, g, busy, env, epochs)
                        s = float(res["seconds"])
                        times.setdefault((wname, pname, cname), []).append(s)
                        if busy == 0:
                            seen.setdefault((wname, pname), []).append(res)
                        print(f"  [{r + 1}] {wname} {pname} {cname}: {s:.1f} s", flush=True)
        for wname in work:
            for pname in policies:
                cells, idle = [], None
                for cname, busy in conds.items():
                    s = float(np.median(times[(wname, pname, cname)]))
                    idle = s if idle is None and busy == 0 else idle
                    cells.append(f"{s:.1f} s" + ("" if busy == 0 or idle is None else f" ({s / idle:.1f}×)"))
                idle_runs = seen.get((wname, pname), [])
                counts = sorted({k for r in idle_runs for k in r.get("threads", [])})
                checks = float(np.median([r.get("checks_ms", 0.0) for r in idle_runs])) if idle_runs else 0.0
                lines.append(f"| {wname} | {pname} | " + " | ".join(cells) + " | "
                             f"{', '.join(map(str, counts)) or '-'} | "
                             f"{f'{checks:.1f} ms' if pname == 'auto' and idle_runs else '-'} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
