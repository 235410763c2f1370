"""What the default pipeline (core.score) costs, in units of one training run at default settings.

    python benchmarks/bench_pipeline_cost.py [--repeats 3]

Times, in one process after a warm-up, one ``training_dynamics`` run and one ``score`` run at
their defaults on small real sets (pbmc68k_reduced, 700 cells; the 199 T cells of scirpy's
wu2020 as raw counts, from ``benchmarks/real_data.py``), the synthetic tissue sample (3 005 spots
x 200 genes) and a synthetic transcriptome (20 000 x 2 000), and reports the ratio and each
stage's share, and, on the small sets, the published package's one run (its 100 epochs, on the
log-normalised data) beside ``score``.  Medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from pathlib import Path

import numpy as np


def _stages(adata, label):
    from napari_annotatability import core
    from napari_annotatability.core._engine import drive

    spent: dict[str, float] = {}
    last = [time.perf_counter()]

    def tick(p):
        now = time.perf_counter()
        spent[p.stage] = spent.get(p.stage, 0.0) + now - last[0]
        last[0] = now

    t = time.perf_counter()
    result = drive(core.iter_score(adata, label, seed=0), tick)  # every default, gene association included
    total = time.perf_counter() - t
    spent["other"] = total - sum(spent.values())
    return total, spent, result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="small data, one repeat")
    ap.add_argument("--out", default=None, help="also write the markdown table to this file")
    ap.add_argument("--only", default=None, help="comma-separated among pbmc, wu2020, tissue, transcriptome")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    from napari_annotatability import core

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_label_quality import competitor_view

    def real(name):
        def make():
            import real_data

            a = real_data.load(name)
            a.obs["label"] = a.obs["label"].astype("category")
            return a
        return make

    every = {
        "pbmc": ("pbmc68k_reduced (700 × 765)", real("pbmc"), True),
        "wu2020": ("wu2020 T cells, raw counts (199 × 30 727)", real("wu2020"), True),
        "tissue": ("synthetic tissue (3005 × 200)", lambda: core.make_synthetic_tissue(seed=0), False),
        "transcriptome": ("transcriptome (20000 × 2000)",
                          lambda: core.make_synthetic(20000, 2000, 10, separation=2.5, seed=1), False),
    }
    names = ["tissue"] if args.smoke else (args.only.split(",") if args.only else list(every))
    unknown = [n for n in names if n not in every]
    if unknown:
        print(f"unknown dataset(s) {', '.join(unknown)}; choose among {', '.join(every)}", file=sys.stderr)
        return 2
    datasets = [every[n] for n in names]
    repeats = 1 if args.smoke else args.repeats
    lines = ["| dataset | one training run s | score() s | ratio | published one run s | score / published | "
             "stages (s) |", "|---|---|---|---|---|---|---|"]
    for name, make, small in datasets:
        try:
            adata = make()
        except Exception as err:  # e.g. offline without the cached download
            lines.append(f"| {name} | skipped: {err} | | | | | |")
            continue
        core.training_dynamics(adata.copy(), "label", seed=0, epochs=2)  # warm-up
        one, full, stage_rows = [], [], []
        for _ in range(repeats):
            a = adata.copy()
            t = time.perf_counter()
            core.training_dynamics(a, "label", seed=0)
            one.append(time.perf_counter() - t)
            total, spent, _ = _stages(adata.copy(), "label")
            full.append(total)
            stage_rows.append(spent)
        o, f = float(np.median(one)), float(np.median(full))
        pub = "–"
        ratio = "–"
        if small:
            from bench_training import _run_published

            view = competitor_view(adata)
            p = float(np.median([_run_published(view.copy(), "label", 100, 0)[0] for _ in range(repeats)]))
            pub, ratio = f"{p:.2f}", f"{f / p:.1f}×"
        stages = {k: float(np.median([s.get(k, 0.0) for s in stage_rows])) for k in stage_rows[0]}
        line = (f"| {name} | {o:.2f} | {f:.2f} | **{f / o:.2f}×** | {pub} | {ratio} | "
                + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()) + " |")
        lines.append(line)
        print(line, flush=True)
    print()
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(f"command: `python benchmarks/bench_pipeline_cost.py{' --only ' + args.only if args.only else ''}`; medians of "
                     f"{repeats} run(s), every default of `core.score`\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
