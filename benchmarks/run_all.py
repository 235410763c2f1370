"""Every benchmark of the project, one after the other, into one markdown report.

    python benchmarks/run_all.py [--out benchmarks/results/REPORT.md] [--only training,graph,...]
    python benchmarks/run_all.py --smoke          # every script at its smallest: checks they run
    python benchmarks/run_all.py --write-docs     # and rewrite each table's generated block in docs/benchmarks.md

Runs each script in ``benchmarks/`` in a fresh process (one at a time: these machines have two
cores and timings of parallel runs mean nothing), each writing its own table, and assembles them
with the machine, the versions and the date into ``--out``.  The viewer and data map benchmarks
need a display: they are run under ``xvfb-run -a`` when ``DISPLAY`` is unset.  Needs the bench extra
(``pip install -e ".[bench]"``: the published Annotatability package and cleanlab).

Full run here (2 cores): training ~10 min, graph ~6 min, label quality ~1.5 h, pipeline cost
~5 min, backed ~5 min, viewer ~10 min, data map ~1.5 min, platforms ~5 min (inputs written once: ~2.5 min); categories ~3 min for its synthetic tissue (2 seeds), plus its
real datasets.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "benchmarks.md"
sys.path.insert(0, str(HERE))
from _docs import has_block, strip_title, write_block  # noqa: E402

#: name -> (script, title, what it answers)
BENCHMARKS = {
    "training": ("bench_training.py", "Training dynamics against the published package",
                 "time ratio, fraction of matmul peak, memory, AUROC of flipped labels at the same recipe"),
    "label_quality": ("bench_label_quality.py", "Finding flipped labels: ours, the published package, cleanlab",
                      "AUROC / AUPRC per dataset and noise kind (the issue-7 table)"),
    "categories": ("bench_categories.py", "Do the categories match the truth? Our rule and the paper's",
                   "% of clean / mislabelled / transition cells per category, both rules from the same runs"),
    "pipeline_cost": ("bench_pipeline_cost.py", "What the default pipeline costs",
                      "core.score() in units of one training run"),
    "graph": ("bench_graph.py", "Trainability-aware graph against the published dense construction",
              "time, memory, neighbour agreement, scale to 10^6 cells"),
    "backed": ("bench_backed.py", "Training on an on-disk .h5ad", "peak memory in memory vs backed"),
    "contention": ("bench_contention.py", "A busy machine: score idle, beside a busy core, at load ~4",
                   "seconds and ratio to idle, the package's thread policy beside torch's default"),
    "viewer": ("bench_viewer.py", "Large sections in the viewer", "open / colour times, GUI stall while training"),
    "datamap": ("bench_datamap.py", "The data map dock at 10^4 - 10^6 spots",
                "time to open the map (density raster above 50 000 spots) and to brush a lasso"),
    "curation": ("bench_curation.py", "Reviewing suspicious spots one by one at 10^5 spots",
                 "time per review step (centre, select, inspector) and per accepted suggestion"),
    "platforms": ("bench_platforms.py", "Xenium- and Visium HD-sized sections in the viewer",
                  "open, recolour every cell, peak memory: 500 000 cells on a 40 000 px mask, 700 000 bins"),
}

#: benchmarks that open Qt widgets: run under ``xvfb-run -a`` when there is no display
NEEDS_DISPLAY = ("viewer", "datamap", "curation", "platforms")


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in ("napari-annotatability", "torch", "anndata", "scanpy", "napari", "Annotatability", "cleanlab"):
        try:
            out.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    return ", ".join(out)


def run_one(name: str, smoke: bool, tmp: Path) -> tuple[str, float, int]:
    script, _, _ = BENCHMARKS[name]
    table = tmp / f"{name}.md"
    cmd = [sys.executable, str(HERE / script), "--out", str(table)] + (["--smoke"] if smoke else [])
    if name in NEEDS_DISPLAY and not os.environ.get("DISPLAY"):
        if shutil.which("xvfb-run") is None:
            return "skipped: needs a display (apt-get install xvfb libgl1-mesa-dri)", 0.0, 0
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", *cmd]
    env = dict(os.environ, PYTHONWARNINGS="ignore", QT_API=os.environ.get("QT_API", "pyqt6"))
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=HERE, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    (tmp / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not table.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return "**failed** (exit {}):\n\n```\n{}\n```".format(proc.returncode, "\n".join(tail)), seconds, 1
    body = "\n".join("##" + line if line.startswith("#") else line  # nest its headings under ours
                     for line in table.read_text().strip().splitlines())
    return body, seconds, 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="default benchmarks/results/REPORT.md (REPORT-smoke.md with --smoke)")
    ap.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated among {', '.join(BENCHMARKS)}")
    ap.add_argument("--smoke", action="store_true", help="every script at its smallest (minutes, not hours)")
    ap.add_argument("--write-docs", action="store_true",
                    help="also rewrite each table's <!-- bench_NAME:start/end --> block in docs/benchmarks.md")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose among {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections, failures = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            _, title, what = BENCHMARKS[name]
            print(f"[{name}] {title} ...", flush=True)
            body, seconds, failed = run_one(name, args.smoke, Path(tmp))
            failures += failed
            print(f"[{name}] {'FAILED' if failed else 'done'} in {seconds / 60:.1f} min", flush=True)
            sections.append(f"## {title}\n\n*{what}* — `python benchmarks/{BENCHMARKS[name][0]}"
                            f"{' --smoke' if args.smoke else ''}` ({seconds / 60:.1f} min)\n\n{body}\n")
            if args.write_docs and not args.smoke and not failed and has_block(DOCS, f"bench_{name}"):
                table = strip_title((Path(tmp) / f"{name}.md").read_text())
                write_block(DOCS, f"bench_{name}", f"`python benchmarks/{BENCHMARKS[name][0]}` ({started}, "
                                                   f"{os.cpu_count()} cores, via run_all.py):\n\n{table}")
                print(f"[{name}] rewrote its table in {DOCS.relative_to(HERE.parent)}", flush=True)
    header = (f"# Benchmark report{' (smoke: tiny sizes, not figures to quote)' if args.smoke else ''}\n\n"
              f"`python benchmarks/run_all.py{' --smoke' if args.smoke else ''}`, {started}; "
              f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; {_versions()}. "
              "Absolute times drift on shared machines: read the ratios.\n")
    out = Path(args.out or HERE / "results" / ("REPORT-smoke.md" if args.smoke else "REPORT.md"))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.tmp")
    tmp_out.write_text(header + "\n" + "\n".join(sections))
    os.replace(tmp_out, out)
    print(f"wrote {out}" + (f" ({failures} benchmark(s) failed)" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
