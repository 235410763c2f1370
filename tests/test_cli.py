"""The command line, end to end from a file on disk, and its answers to bad input."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_annotatability import cli, core
from napari_annotatability.core import keys


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def infile(tmp_path):
    adata = core.make_synthetic(1500, 60, 4, separation=3.0, seed=5)
    p = tmp_path / "cells.h5ad"
    adata.write_h5ad(p)
    return p


def test_score_end_to_end(infile, tmp_path, capsys):
    before = _digest(infile)
    out = tmp_path / "scored.h5ad"
    rc = cli.main(["score", str(infile), "--label", "label", "--out", str(out), "--epochs", "10", "--quiet"])
    assert rc == 0 and _digest(infile) == before
    scored = ad.read_h5ad(out)
    for k in (*keys.SCORE_COLUMNS, keys.CATEGORY, keys.SUGGESTED_LABEL, keys.SUGGESTED_PROB):
        assert k in scored.obs
    for k in (keys.GENE_HIGH, keys.GENE_LOW, keys.GENE_MID):
        assert k in scored.var
    assert scored.obsm[keys.TRAJECTORY].shape == (1500, 10)
    info = scored.uns[keys.UNS]
    assert info["params"]["epochs"] == 10 and "confidence" in info["thresholds"]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_score_prints_a_summary(infile, tmp_path, capsys):
    rc = cli.main(["score", str(infile), "--label", "label", "--out", str(tmp_path / "o.h5ad"),
                   "--epochs", "5", "--no-calibrate", "--conf-cutoff", "0.3", "--var-cutoff", "0.1", "--top", "3",
                   "--rule", "paper"])
    assert rc == 0
    text = " ".join(capsys.readouterr().out.split())  # the summary wraps its lines
    assert "categories" in text and "erroneous" in text and "cells with the lowest label quality" in text
    assert "given" in text and "rule 'paper'" in text and "confidence at most 0.30" in text
    scored = ad.read_h5ad(tmp_path / "o.h5ad")
    assert scored.uns[keys.UNS]["thresholds"]["rule"] == "paper"


def test_score_rule_paper_and_calibrated(infile, tmp_path, capsys):
    out = tmp_path / "p.h5ad"
    assert cli.main(["score", str(infile), "--label", "label", "--out", str(out), "--epochs", "6", "--no-genes",
                     "--rule", "paper"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # the summary wraps its lines
    th = ad.read_h5ad(out).uns[keys.UNS]["thresholds"]
    assert th["rule"] == "paper" and th["correct_confidence"] == 0.95 and "label_quality" in th  # both calibrated
    assert "rule 'paper'" in text
    assert cli.main(["score", str(infile), "--label", "label", "--out", str(tmp_path / "c.h5ad"), "--epochs", "6",
                     "--no-genes", "--ambiguous-second", "0.3"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # the summary wraps its lines
    th = ad.read_h5ad(tmp_path / "c.h5ad").uns[keys.UNS]["thresholds"]
    assert th["rule"] == "calibrated" and th["ambiguous_second"] == 0.3 and th["label_quality_percentile"] == core.ERRONEOUS_PERCENTILE
    assert "rule 'calibrated'" in text and "deliberately mislabelled" in text
    # the calibrated rule needs the out-of-sample check: one line, before any training
    assert cli.main(["score", str(infile), "--label", "label", "--out", str(tmp_path / "n.h5ad"), "--epochs", "2",
                     "--no-quality"]) == 2
    assert "--rule paper" in capsys.readouterr().err


def test_same_seed_same_output(infile, tmp_path):
    for name in ("a.h5ad", "b.h5ad"):
        assert cli.main(["score", str(infile), "--label", "label", "--out", str(tmp_path / name),
                         "--epochs", "4", "--seed", "3", "--quiet", "--no-genes"]) == 0
    a, b = ad.read_h5ad(tmp_path / "a.h5ad"), ad.read_h5ad(tmp_path / "b.h5ad")
    np.testing.assert_array_equal(a.obsm[keys.TRAJECTORY], b.obsm[keys.TRAJECTORY])
    assert a.obs[keys.SUGGESTED_LABEL].equals(b.obs[keys.SUGGESTED_LABEL])


def _write(tmp_path, adata, name="bad.h5ad"):
    p = tmp_path / name
    adata.write_h5ad(p)
    return p


def _bad_inputs(tmp_path):
    good = core.make_synthetic(300, 20, 3, seed=1)
    one_class = good.copy()
    one_class.obs["label"] = "same"
    nan_label = good.copy()
    nan_label.obs["label"] = nan_label.obs["label"].astype(object)
    nan_label.obs.iloc[3, nan_label.obs.columns.get_loc("label")] = np.nan
    nonfinite = good.copy()
    nonfinite.X[5, 2] = np.inf
    nonfinite_sparse = good.copy()
    nonfinite_sparse.X = sp.csr_matrix(nonfinite_sparse.X)
    nonfinite_sparse.X.data[0] = np.nan
    empty = good[:0].copy()
    no_genes = ad.AnnData(np.zeros((10, 0), dtype=np.float32), obs=good.obs.iloc[:10].copy())
    corrupt = tmp_path / "corrupt.h5ad"
    corrupt.write_bytes(b"this is not an HDF5 file" * 10)
    return {
        "missing key": (_write(tmp_path, good, "g.h5ad"), ["--label", "cell_type"], "not in adata.obs"),
        "one class": (_write(tmp_path, one_class, "one.h5ad"), ["--label", "label"], "at least 2"),
        "NaN labels": (_write(tmp_path, nan_label, "nan.h5ad"), ["--label", "label"], "no label (NaN)"),
        "non-finite X": (_write(tmp_path, nonfinite, "inf.h5ad"), ["--label", "label"], "NaN or infinite"),
        "non-finite sparse X": (_write(tmp_path, nonfinite_sparse, "infs.h5ad"), ["--label", "label"], "NaN or infinite"),
        "empty": (_write(tmp_path, empty, "empty.h5ad"), ["--label", "label"], "no cells"),
        "no features": (_write(tmp_path, no_genes, "nogenes.h5ad"), ["--label", "label"], "no features"),
        "unreadable": (corrupt, ["--label", "label"], "cannot read"),
        "missing file": (tmp_path / "nope.h5ad", ["--label", "label"], "not found"),
        "bad epochs": (_write(tmp_path, good, "g2.h5ad"), ["--label", "label", "--epochs", "0"], "epochs"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing key", "one class", "NaN labels", "non-finite X", "non-finite sparse X", "empty", "no features",
     "unreadable", "missing file", "bad epochs"],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(case, tmp_path, capsys):
    path, args, message = _bad_inputs(tmp_path)[case]
    before = _digest(path) if path.exists() else None
    out = tmp_path / "out.h5ad"
    rc = cli.main(["score", str(path), "--out", str(out), "--quiet", "--epochs", "2", *args][:])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert message in err and err.startswith("napari-annotatability: error:")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()
    if before is not None:
        assert _digest(path) == before


def test_refuses_to_overwrite_the_input(infile, capsys):
    before = _digest(infile)
    rc = cli.main(["score", str(infile), "--label", "label", "--out", str(infile), "--epochs", "2"])
    assert rc == 2 and "refusing to overwrite the input" in capsys.readouterr().err
    assert _digest(infile) == before


def test_missing_output_folder_fails_before_training(infile, tmp_path, capsys):
    rc = cli.main(["score", str(infile), "--label", "label", "--out", str(tmp_path / "no" / "o.h5ad")])
    assert rc == 2 and "output folder does not exist" in capsys.readouterr().err


def test_failed_write_leaves_no_partial_output(infile, tmp_path, monkeypatch, capsys):
    out = tmp_path / "o.h5ad"
    out.write_bytes(b"previous result")

    def boom(self, path, *a, **k):
        with open(path, "wb") as fh:
            fh.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", boom)
    rc = cli.main(["score", str(infile), "--label", "label", "--out", str(out), "--epochs", "2", "--quiet"])
    assert rc == 2 and "No space left" in capsys.readouterr().err
    assert out.read_bytes() == b"previous result"  # the old file is intact
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_raw_counts_warning_is_one_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    counts = ad.AnnData(rng.poisson(30, size=(200, 30)).astype(np.float32),
                        obs=pd.DataFrame({"g": np.repeat(["a", "b"], 100)}, index=[f"c{i}" for i in range(200)]))
    p = _write(tmp_path, counts, "counts.h5ad")
    rc = cli.main(["score", str(p), "--label", "g", "--out", str(tmp_path / "o.h5ad"), "--epochs", "2", "--quiet",
                   "--no-calibrate"])
    err = capsys.readouterr().err
    assert rc == 0 and "warning: " in err and "raw counts" in err and "--preprocess" in err


def test_compare_and_preprocess_options(tmp_path):
    rng = np.random.default_rng(0)
    lam = np.where(np.repeat([True, False], 150)[:, None], 5.0, 20.0) * np.ones((300, 40))
    counts = ad.AnnData(rng.poisson(lam).astype(np.float32),
                        obs=pd.DataFrame({"g": np.repeat(["a", "b"], 150), "h": np.tile(["a", "b"], 150)},
                                         index=[f"c{i}" for i in range(300)]))
    p = _write(tmp_path, counts, "counts.h5ad")
    out = tmp_path / "o.h5ad"
    rc = cli.main(["score", str(p), "--label", "g", "--out", str(out), "--epochs", "3", "--quiet",
                   "--preprocess", "--compare", "h", "--no-calibrate"])
    assert rc == 0
    res = ad.read_h5ad(out)
    assert keys.OTHER_CONFIDENCE in res.obs and res.uns[keys.UNS]["other_label_key"] == "h"
    assert not core.looks_like_counts(res.X)


def test_demo_runs(capsys, tmp_path):
    out = tmp_path / "demo.h5ad"
    assert cli.main(["demo", "--headless", "--cells", "1200", "--epochs", "5", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "planted mislabels flagged erroneous" in text and out.exists()


@pytest.mark.slow
def test_graph_command_end_to_end(infile, tmp_path, capsys):
    scored = tmp_path / "scored.h5ad"
    assert cli.main(["score", str(infile), "--label", "label", "--out", str(scored), "--epochs", "5", "--quiet",
                     "--no-calibrate"]) == 0
    before = _digest(scored)
    out = tmp_path / "graph.h5ad"
    rc = cli.main(["graph", str(scored), "--out", str(out), "--neighbors", "10", "--resolution", "0.5"])
    assert rc == 0 and _digest(scored) == before
    res = ad.read_h5ad(out)
    assert keys.CONNECTIVITIES in res.obsp and keys.COMMUNITY in res.obs and keys.UMAP in res.obsm
    assert "communities" in capsys.readouterr().out


def test_graph_command_needs_scores(infile, tmp_path, capsys):
    rc = cli.main(["graph", str(infile), "--out", str(tmp_path / "g.h5ad")])
    err = capsys.readouterr().err
    assert rc == 2 and "annot_confidence" in err and "training_dynamics" in err
    assert not (tmp_path / "g.h5ad").exists()


_HEAVY = "('torch', 'scanpy', 'anndata', 'napari', 'qtpy')"


@pytest.mark.parametrize("args", [None, ["--help"], ["score", "--help"], ["demo", "--help"]])
def test_the_command_line_starts_without_heavy_imports(args):
    """--help answers at once: the package's heavy dependencies load inside the commands only."""
    run = "" if args is None else f"\ntry:\n    napari_annotatability.cli.main({args!r})\nexcept SystemExit:\n    pass"
    code = f"import sys, napari_annotatability.cli{run}\nprint([m for m in {_HEAVY} if m in sys.modules])"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"


def _no_display_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland displays are a Linux matter")
@pytest.mark.slow
def test_demo_without_a_display_says_how_to_run_headless(tmp_path):
    res = subprocess.run([sys.executable, "-m", "napari_annotatability.cli", "demo"], capture_output=True,
                         text=True, timeout=120, env=_no_display_env(), cwd=tmp_path)
    assert res.returncode == 2, res.stderr  # not Qt's abort (134)
    assert "DISPLAY" in res.stderr and "demo --headless" in res.stderr and "xvfb-run -a" in res.stderr
    res = subprocess.run([sys.executable, "-m", "napari_annotatability.cli", "demo", "--headless", "--cells", "300",
                          "--epochs", "3"], capture_output=True, text=True, timeout=300, env=_no_display_env(),
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "planted mislabels flagged erroneous" in res.stdout
    assert "training: 100 %" in res.stderr  # progress as plain lines: stderr is a pipe here


@pytest.mark.parametrize(("env", "platform", "missing"), [
    ({}, "linux", True),
    ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
    ({"DISPLAY": ":0"}, "linux", False),
    ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
    ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
    ({"QT_QPA_PLATFORM": "wayland;minimal"}, "linux", False),
    ({"QT_QPA_PLATFORM": "vnc:size=800x600"}, "linux", False),
    ({}, "darwin", False),
    ({}, "win32", False),
])
def test_missing_display_reads_the_environment(env, platform, missing):
    from napari_annotatability._napari._demo import missing_display

    problem = missing_display(env, platform)
    assert (problem is not None) == missing
    if missing:
        assert "--headless" in problem and ("QT_QPA_PLATFORM=xcb" in problem) == ("QT_QPA_PLATFORM" in env)


def test_platform_input_options(tmp_path, capsys):
    """--backed is for .h5ad only; --bin-size must be a positive integer (checked before any reading)."""
    run = tmp_path / "xenium_run"
    run.mkdir()
    (run / "experiment.xenium").write_text("{}")
    rc = cli.main(["score", str(run), "--label", "x", "--out", str(tmp_path / "o.h5ad"), "--backed"])
    err = capsys.readouterr().err
    assert rc == 2 and "--backed" in err and "xenium" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        cli.main(["score", str(run), "--label", "x", "--out", str(tmp_path / "o.h5ad"), "--bin-size", "0"])
    assert "must be an integer >= 1" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["experiment.xenium"]
