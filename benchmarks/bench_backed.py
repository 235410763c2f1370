"""Training on an on-disk (backed) .h5ad: peak memory bounded by the batch, not by the data.

    python benchmarks/bench_backed.py [--cells 300000,100000] [--genes 500] [--density 0.1]
    python benchmarks/bench_backed.py --smoke

For each size of ``--cells``, writes a sparse (CSR) .h5ad of cells x ``--genes`` to a temporary
folder, then, each in a fresh process, trains one ``training_dynamics`` run (adaptive recipe,
seed 0) on it

* loaded into memory (``anndata.read_h5ad(path)``), and
* left on disk (``anndata.read_h5ad(path, backed="r")``, CLI ``score --backed``),

and reports seconds, the process's peak RSS above what it held after imports (what the data
and the training added), and whether both give the same confidence.  At sizes up to
``--pipeline-max`` cells a third process times the whole default pipeline (``core.score``) on
the backed file and its write to a new .h5ad.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, anndata as ad
from napari_annotatability import core
from napari_annotatability.core import keys
path, mode, epochs = sys.argv[1], sys.argv[2], sys.argv[3]
epochs = None if epochs == "auto" else int(epochs)
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)
core.training_dynamics(core.make_synthetic(300, 20, 3, seed=0), "label", epochs=1)  # imports, warm-up
base = rss()
t = time.perf_counter()
adata = ad.read_h5ad(path, backed="r" if mode != "memory" else None)
if mode == "pipeline":
    core.score(adata, "label", seed=0, epochs=epochs)
    out = path.replace(".h5ad", ".scored.h5ad")
    core.write_h5ad(adata, out)
else:
    core.training_dynamics(adata, "label", seed=0, epochs=epochs)
seconds = time.perf_counter() - t
np.save(path + f".{mode}.npy", adata.obs[keys.CONFIDENCE].to_numpy())
print(json.dumps({"seconds": seconds, "peak_mib": rss() - base, "base_mib": base}))
"""


def make_file(path: Path, n: int, g: int, density: float, seed: int = 0) -> tuple[float, float]:
    """A class-structured sparse matrix written in row blocks; returns (file MiB, X MiB in memory)."""
    import anndata as ad
    import h5py
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    try:
        from anndata.io import write_elem
    except ImportError:  # anndata < 0.11
        from anndata.experimental import write_elem

    rng = np.random.default_rng(seed)
    k = 8
    labels = rng.integers(0, k, n)
    centres = rng.gamma(2.0, 1.0, (k, g)).astype(np.float32)
    nnz_total = 0
    with h5py.File(path, "w") as f:
        small = ad.AnnData(obs=pd.DataFrame({"label": pd.Categorical([f"type{c}" for c in labels])},
                                            index=[f"cell{i}" for i in range(n)]),
                           var=pd.DataFrame(index=[f"gene{j}" for j in range(g)]))
        for key in ("obs", "var"):
            write_elem(f, key, getattr(small, key))
        for key in ("obsm", "varm", "layers", "obsp", "varp", "uns"):
            write_elem(f, key, {})
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        block = 50_000
        first = True
        for s in range(0, n, block):
            e = min(n, s + block)
            m = sp.random(e - s, g, density=density, format="csr", dtype=np.float32, random_state=rng)
            m.data = np.log1p(m.data * 4 + centres[labels[s:e]][m.nonzero()] * 2).astype(np.float32)
            nnz_total += m.nnz
            if first:
                write_elem(f, "X", m)  # anndata makes sparse arrays resizable
                first = False
            else:
                ad.io.sparse_dataset(f["X"]).append(m)
    return path.stat().st_size / 2**20, nnz_total * 8 / 2**20


def child(path: Path, mode: str, epochs: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), mode, epochs], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_size(n: int, args) -> tuple[list[str], bool, float, float]:
    """The table rows of one size, whether memory and backed agree, and the two ratios."""
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.h5ad"
        t = time.perf_counter()
        file_mib, x_mib = make_file(path, n, args.genes, args.density)
        print(f"wrote {n} x {args.genes} CSR ({file_mib:.0f} MiB on disk, X {x_mib:.0f} MiB in memory) "
              f"in {time.perf_counter() - t:.0f} s", flush=True)
        rows = {}
        modes = ["memory", "backed"] + (["pipeline"] if args.pipeline and n <= args.pipeline_max else [])
        for mode in modes:
            rows[mode] = child(path, mode, args.epochs)
            print(n, mode, rows[mode], flush=True)
        same = np.array_equal(np.load(f"{path}.memory.npy"), np.load(f"{path}.backed.npy"))
    size = f"{n:,} × {args.genes}".replace(",", " ")
    lines = [
        f"| {size} ({x_mib:.0f} MiB / {file_mib:.0f} MiB) | in memory | training_dynamics | "
        f"{rows['memory']['seconds']:.1f} | {rows['memory']['peak_mib']:.0f} MiB |",
        f"| {size} | on disk (backed) | training_dynamics | {rows['backed']['seconds']:.1f} | "
        f"**{rows['backed']['peak_mib']:.0f} MiB** |",
    ]
    if "pipeline" in rows:
        lines.append(f"| {size} | on disk (backed) | score() + write .h5ad | {rows['pipeline']['seconds']:.1f} | "
                     f"{rows['pipeline']['peak_mib']:.0f} MiB |")
    peak = rows["backed"]["peak_mib"] / max(rows["memory"]["peak_mib"], 1)
    return lines, same, peak, rows["backed"]["seconds"] / rows["memory"]["seconds"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default="300000,100000", help="comma-separated sizes (cells)")
    ap.add_argument("--genes", type=int, default=500)
    ap.add_argument("--density", type=float, default=0.1)
    ap.add_argument("--epochs", default="auto", help="training epochs (default: the adaptive recipe's)")
    ap.add_argument("--no-pipeline", dest="pipeline", action="store_false", help="skip the core.score runs")
    ap.add_argument("--pipeline-max", type=int, default=100_000,
                    help="time core.score only at sizes up to this many cells")
    ap.add_argument("--smoke", action="store_true", help="5 000 cells, 2 epochs")
    ap.add_argument("--out", default=None, help="also write the markdown table to this file")
    args = ap.parse_args(argv)
    if args.smoke:
        args.cells, args.epochs = "5000", "2"
    sizes = [int(c) for c in str(args.cells).split(",") if c.strip()]
    lines = [
        f"command: `python benchmarks/bench_backed.py{' --smoke' if args.smoke else ''}`: CSR X, density "
        f"{args.density}, epochs {args.epochs}; X in memory / the file in the first column",
        "",
        "| cells × genes (X in memory / file) | X | what | seconds | peak memory added |",
        "|---|---|---|---|---|",
    ]
    notes, all_same = [], True
    for n in sizes:
        rows, same, peak, slower = run_size(n, args)
        lines += rows
        all_same &= same
        notes.append(f"{n:,}".replace(",", " ") + f" cells: backed / in-memory peak {peak:.2f}, time {slower:.2f}×, "
                     f"same confidence: **{'yes' if same else 'NO'}**")
    lines += ["", "; ".join(notes) + "."]
    text = "\n".join(lines)
    print()
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if all_same else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
