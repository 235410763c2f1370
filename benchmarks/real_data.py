"""Real labelled datasets for the label-quality benchmark, fetched on first use and cached.

    python benchmarks/real_data.py              # fetch (once) and print what each dataset holds
    python benchmarks/real_data.py wu2020 ...   # only these

Each loader returns an AnnData whose ``obs['label']`` is a clean categorical (rows without an
annotation dropped, classes of fewer than 2 cells dropped with a printed note, unused categories
removed) and whose ``X`` is exactly what the distribution ships: raw counts stay raw counts,
sparse stays sparse, nothing is normalised -- the project's scoring has to cope with that.
``obsm['spatial']`` is kept where the file has it.  ``REAL_DATASETS`` is shaped like
``DATASETS`` in ``bench_label_quality.py``: ``{name: (title, loader, published_epochs)}``.

Apart from ``pbmc`` (shipped inside scanpy), the files are test or sample data inside published
PyPI distributions.  The first call runs ``pip download --no-deps`` for exactly that
distribution into a temporary folder inside the cache, extracts only the needed file(s) and
deletes the archive; later calls read the extracted file and need no network.  The cache is
``$NAPARI_ANNOTATABILITY_DATA/<package>-<version>/`` or, when that variable is unset,
``~/.cache/napari-annotatability/bench-data/<package>-<version>/``, with each file at its
path inside the distribution (for an sdist, without the top ``<name>-<version>/`` folder).
Nothing here is shipped with the package.  Provenance and licences: ``docs/datasets.md``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

ENV_VAR = "NAPARI_ANNOTATABILITY_DATA"
DEFAULT_ROOT = Path("~/.cache/napari-annotatability/bench-data")


# ---------------------------------------------------------------------------------------------
# cache and download
def cache_root() -> Path:
    """Folder holding one ``<package>-<version>`` folder per fetched distribution."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_ROOT.expanduser()


def cache_dir(package: str, version: str) -> Path:
    """Where the files of ``package==version`` are cached (not created here)."""
    return cache_root() / f"{package}-{version}"


def _pip_command(package: str, version: str, kind: str, dest: Path) -> list[str]:
    if kind not in ("wheel", "sdist"):
        raise ValueError(f"kind must be 'wheel' or 'sdist', not {kind!r}")
    flag = "--only-binary" if kind == "wheel" else "--no-binary"
    return [sys.executable, "-m", "pip", "download", "--no-deps", flag, ":all:",
            "--disable-pip-version-check", "--dest", str(dest), f"{package}=={version}"]


def _pip_download(package: str, version: str, kind: str, dest: Path) -> Path:
    """Download the wheel or sdist of ``package==version`` into ``dest``; return its path.

    Raises ``RuntimeError`` naming the package, the pip command and where to put files by hand.
    """
    cmd = _pip_command(package, version, kind, dest)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        ok, detail = proc.returncode == 0, (proc.stderr or proc.stdout or "").strip()
    except OSError as exc:  # pip itself could not be started
        ok, detail = False, str(exc)
    found = sorted(p for p in Path(dest).iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip"))) if ok else []
    if not found:
        last = "\n      ".join(detail.splitlines()[-5:]) or "(no output)"
        raise RuntimeError(
            f"could not fetch the {kind} of {package}=={version} (offline, or the package index is unreachable).\n"
            f"  command: {' '.join(cmd)}\n"
            f"  pip said: {last}\n"
            f"To work offline, download {package}-{version} ({kind}) on another machine with that command, "
            f"extract the needed file(s) and place each by hand at {cache_dir(package, version)}/<its path in "
            f"the archive> (for an sdist, without the archive's top '<name>-{version}/' folder), "
            f"or set ${ENV_VAR} to a folder laid out the same way."
        )
    return found[0]


def _extract(archive: Path, members: list[str], target: Path) -> None:
    """Copy ``members`` (paths inside the distribution) out of a .whl/.zip or .tar.gz into ``target``.

    Sdist members are matched without their top ``<name>-<version>/`` folder.  Each file is
    written under a temporary name and renamed into place (``os.replace``), so a half-written
    file never looks cached.  Only the named members are read: nothing else in the archive
    touches the disk.
    """
    wanted, done = set(members), set()
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            for m in set(zf.namelist()) & wanted:
                with zf.open(m) as src:
                    _write_atomic(target / m, src)
                done.add(m)
    else:
        with tarfile.open(archive, "r:*") as tf:
            for info in tf:
                name = info.name.removeprefix("./")
                rel = name.split("/", 1)[1] if "/" in name else name
                if info.isfile() and rel in wanted and rel not in done:
                    with tf.extractfile(info) as src:
                        _write_atomic(target / rel, src)
                    done.add(rel)
    missing = [m for m in members if m not in done]
    if missing:
        raise RuntimeError(f"{archive.name} holds no {', '.join(missing)}")


def _write_atomic(path: Path, src) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            shutil.copyfileobj(src, fh, 1 << 20)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def fetch(package: str, version: str, members, kind: str = "wheel") -> list[Path]:
    """Local paths of ``members`` (paths inside the ``kind`` distribution of ``package==version``).

    Files already in the cache are returned at once (no network).  Otherwise the distribution
    is downloaded once with pip into a temporary folder inside the cache, the members are
    extracted next to it and the temporary folder (with the archive) is removed.
    """
    members = list(members)
    where = cache_dir(package, version)
    paths = [where / m for m in members]
    if all(p.is_file() for p in paths):
        return paths
    where.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=where))
    try:
        print(f"fetching {package}=={version} ({kind}) into {where} ...", file=sys.stderr)
        try:
            archive = _pip_download(package, version, kind, tmp)
        except RuntimeError as exc:
            listing = "".join(f"\n    {p}" for p in paths)
            raise RuntimeError(f"{exc}\nFiles expected here:{listing}") from None
        _extract(archive, members, where)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths


# ---------------------------------------------------------------------------------------------
# shared clean-up
def _finish(adata, column: str, name: str, drop_values=()):
    """Put a clean categorical ``obs['label']`` from ``obs[column]``; drop unusable rows."""
    if not adata.obs_names.is_unique:
        n = int(adata.obs_names.duplicated().sum())
        print(f"[{name}] {n} duplicated obs names made unique")
        adata.obs_names_make_unique()
    labels = adata.obs[column]
    keep = labels.notna().to_numpy()
    if not keep.all():
        print(f"[{name}] dropped {int((~keep).sum())} cells without a '{column}'")
    for value in drop_values:
        hit = (labels.astype(object) == value).to_numpy() & keep
        if hit.any():
            print(f"[{name}] dropped {int(hit.sum())} cells labelled {value!r}")
            keep &= ~hit
    counts = labels[keep].astype(object).value_counts()
    small = counts[counts < 2]
    if len(small):
        listing = ", ".join(f"{k!r} ({v})" for k, v in small.items())
        print(f"[{name}] dropped classes with fewer than 2 cells: {listing}")
        keep &= ~labels.astype(object).isin(small.index).to_numpy()
    if not keep.all():
        adata = adata[keep].copy()
    lab = adata.obs[column]
    if not isinstance(lab.dtype, pd.CategoricalDtype):
        lab = lab.astype(str).astype("category")
    adata.obs["label"] = lab.cat.remove_unused_categories()
    return adata


def _read_h5ad(path: Path):
    import anndata as ad

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path)


# ---------------------------------------------------------------------------------------------
# loaders
def load_pbmc():
    """``scanpy.datasets.pbmc68k_reduced()``: 700 PBMCs x 765 scaled genes, label ``bulk_labels``.

    X is scanpy's scaled (z-scored, clipped) matrix as shipped: dense, with negatives.
    """
    from bench_training import _pbmc  # bulk_labels as obs['label'], as in the training benchmark

    return _finish(_pbmc(), "label", "pbmc")


def load_wu2020():
    """scirpy 0.22.5 test data: 200 tumour-infiltrating T cells (Wu et al. 2020), raw UMI counts.

    Label ``cluster_orig`` (the study's T-cell clusters).  The file is in the wheel as well as
    the sdist, so the (smaller) wheel is fetched.  Sparse CSR float32 of integer counts.
    """
    (path,) = fetch("scirpy", "0.22.5", ["scirpy/tests/data/wu2020_200_v0_11.h5ad"], kind="wheel")
    return _finish(_read_h5ad(path), "cluster_orig", "wu2020")


def load_scfates():
    """scFates 1.2.5 example data ``scFates/datasets/test.h5ad``: 1 330 cells x 20 genes.

    Label ``leiden``.  X ships log-normalised (``uns['log1p']``), not raw counts; sparse CSR.
    """
    (path,) = fetch("scfates", "1.2.5", ["scFates/datasets/test.h5ad"], kind="wheel")
    return _finish(_read_h5ad(path), "leiden", "scfates")


#: channel kinds of the FlowSOM test file, in file order (18 parameters, $PAR = 18)
_FLOW_KINDS = ["time"] + ["scatter"] * 6 + ["fluorescence"] * 11


def load_flowsom(preprocessed: bool = False):
    """FlowSOM 0.2.2 test data (sdist ``tests/data``): 19 225 events of one BAL flow-cytometry tube.

    The FCS file has exactly 18 parameters and all 18 are kept, in file order: ``Time``, six
    scatter channels (``FSC-A/H/W``, ``SSC-A/H/W``) and eleven fluorescence channels named by
    their marker (GFP, CD8, l/d = live/dead, ``Qdot 605-A`` = no marker, TCRyd, CD45, TCRb,
    NK1/1, CD4, CD19, CD3); ``var['channel']`` has the detector names and ``var['kind']`` says
    time / scatter / fluorescence so a caller can keep the 11 markers only.

    By default the values are those of ``not_preprocessed.fcs`` as shipped: linear, float32,
    *uncompensated* intensities (the spillover matrix is in ``uns['meta']['spill']``).
    Over the 13 671 gated events fluorescence runs from about -230 to 116 000, scatter from
    about 9 700 to 142 000 and Time from 0 to 7 184; 2.3 % of fluorescence values are negative.
    ``preprocessed=True`` reads ``ff.fcs`` instead: the same events, compensated and
    logicle-transformed by FlowSOM (fluorescence about -2 .. 4.3; scatter and Time identical).

    Labels are the manual gates of ``gating_result.csv`` (one line per event, no header);
    events gated ``Unlabeled`` are dropped.
    """
    import readfcs

    fcs_name = "ff.fcs" if preprocessed else "not_preprocessed.fcs"
    members = ["tests/data/not_preprocessed.fcs", "tests/data/ff.fcs", "tests/data/gating_result.csv"]
    paths = dict(zip(members, fetch("flowsom", "0.2.2", members, kind="sdist")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = readfcs.read(str(paths[f"tests/data/{fcs_name}"]))
    gates = pd.read_csv(paths["tests/data/gating_result.csv"], header=None).iloc[:, 0]
    if len(gates) != adata.n_obs:
        raise ValueError(f"gating_result.csv has {len(gates)} rows for {adata.n_obs} events")
    if adata.n_vars != len(_FLOW_KINDS):
        raise ValueError(f"expected 18 FCS parameters, found {adata.n_vars}")
    adata.var["kind"] = _FLOW_KINDS
    adata.obs["gate"] = pd.Categorical(gates.to_numpy())
    adata.obs_names = [f"event_{i}" for i in range(adata.n_obs)]
    return _finish(adata, "gate", "flowsom", drop_values=("Unlabeled",))


#: the DLPFC sections of the benchmark (paste2 also ships 151673)
DLPFC_SECTIONS = ("151674", "151675", "151676")


def load_dlpfc(section: str):
    """paste2 1.0.1 sample data: one 10x Visium section of human DLPFC (Maynard et al. 2021).

    Raw UMI counts (sparse CSR float32), ``obsm['spatial']`` spot coordinates, label
    ``layer_guess`` (manual cortical layers 1-6 and white matter); spots without a layer are
    dropped.
    """
    # the three benchmark sections come out of one 47 MB sdist: extract them together
    sections = sorted(set(DLPFC_SECTIONS) | {str(section)})
    paths = fetch("paste2", "1.0.1", [f"sample_data/{s}.h5ad" for s in sections], kind="sdist")
    path = paths[sections.index(str(section))]
    return _finish(_read_h5ad(path), "layer_guess", f"dlpfc_{section}")


def _dlpfc(section):
    def make():
        return load_dlpfc(section)

    make.__name__ = f"load_dlpfc_{section}"
    return make


REAL_DATASETS = {
    "pbmc": ("pbmc68k_reduced (700 × 765)", load_pbmc, 150),
    "wu2020": ("Wu 2020 T cells, scirpy (199 × 30 727)", load_wu2020, 100),
    "scfates": ("scFates test (1 330 × 20)", load_scfates, 100),
    "flowsom": ("FlowSOM BAL flow cytometry (13 671 × 18)", load_flowsom, 100),
    "dlpfc_151674": ("DLPFC Visium 151674 (2 877 × 12 381)", _dlpfc("151674"), 100),
    "dlpfc_151675": ("DLPFC Visium 151675 (2 873 × 10 629)", _dlpfc("151675"), 100),
    "dlpfc_151676": ("DLPFC Visium 151676 (2 701 × 10 778)", _dlpfc("151676"), 100),
}


def load(name: str):
    """The AnnData of ``REAL_DATASETS[name]`` (fetched and cached on first use)."""
    try:
        _, loader, _ = REAL_DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; choose from {', '.join(REAL_DATASETS)}") from None
    return loader()


# ---------------------------------------------------------------------------------------------
def describe(adata) -> dict:
    """Figures of one loaded dataset: sizes, classes and what kind of values X holds."""
    import scipy.sparse as sp

    X = adata.X
    sparse = sp.issparse(X)
    values = X.data if sparse else np.asarray(X)
    counts = adata.obs["label"].value_counts()
    finite = values[np.isfinite(values)] if values.size else values
    return {
        "cells": adata.n_obs,
        "features": adata.n_vars,
        "classes": int((counts > 0).sum()),
        "min class": int(counts.min()),
        "X max": float(finite.max()) if finite.size else float("nan"),
        "integer": bool(np.all(finite == np.round(finite))),
        "negatives": bool((finite < 0).any()),
        "dtype": str(X.dtype),
        "sparse": f"yes ({X.format})" if sparse else "no",
    }


def main(argv=None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or list(REAL_DATASETS)
    rows = []
    for name in names:
        d = describe(load(name))
        rows.append([name, str(d["cells"]), str(d["features"]), str(d["classes"]), str(d["min class"]),
                     f"{d['X max']:.6g}", "yes" if d["integer"] else "no", "yes" if d["negatives"] else "no",
                     d["dtype"], d["sparse"]])
    head = ["dataset", "cells", "features", "classes", "min class", "X max", "integer", "negatives",
            "dtype", "sparse"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
