"""Every file the project writes gets the permissions ``open()`` would give it, and inputs stay untouched."""

from __future__ import annotations

import hashlib
import os
import stat
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_annotatability import cli, core
from napari_annotatability._napari import _writer
from napari_annotatability.core import io as core_io
from napari_annotatability.core.export import write_spots_csv, write_spots_geojson

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    """Run the test under a given umask (restored afterwards); the value is the mode expected of new files."""
    old = os.umask(request.param)
    try:
        yield 0o666 & ~request.param
    finally:
        os.umask(old)


def _spots() -> ad.AnnData:
    a = ad.AnnData(np.arange(12, dtype=np.float32).reshape(4, 3),
                   obs=pd.DataFrame({"label": pd.Categorical(["a", "b", "a", "b"])}, index=["s1", "s2", "s3", "s4"]))
    a.obsm["spatial"] = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    return a


WRITERS = {
    "h5ad": core.write_h5ad,
    "csv": write_spots_csv,
    "geojson": write_spots_geojson,
}


@pytest.mark.parametrize("ext", sorted(WRITERS))
def test_new_files_follow_the_umask(umask, ext, tmp_path):
    out = WRITERS[ext](_spots(), tmp_path / f"spots.{ext}")
    assert _mode(out) == umask  # 0644 under 022, 0600 under 077
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"spots.{ext}"]  # no temporary file left behind


@pytest.mark.parametrize("ext", sorted(WRITERS))
def test_napari_writers_follow_the_umask(umask, ext, tmp_path):
    path = str(tmp_path / f"layer.{ext}")
    writer = {"h5ad": _writer.write_h5ad, "csv": _writer.write_csv, "geojson": _writer.write_geojson}[ext]
    assert writer(path, np.zeros((4, 2)), {"metadata": {"adata": _spots()}}) == [path]
    assert _mode(path) == umask


def test_a_replaced_file_keeps_its_own_mode(tmp_path):
    out = tmp_path / "spots.csv"
    out.write_text("old\n")
    os.chmod(out, 0o640)
    old = os.umask(0o077)
    try:
        write_spots_csv(_spots(), out)
    finally:
        os.umask(old)
    assert _mode(out) == 0o640 and out.read_text().startswith("cell,x,y")


def test_umask_is_read_without_changing_it(monkeypatch):
    old = os.umask(0o027)
    try:
        assert core_io.current_umask() == 0o027

        def no_proc(*args, **kwargs):
            raise OSError("no /proc here")

        monkeypatch.setattr(core_io, "open", no_proc, raising=False)  # the set-and-restore fallback
        assert core_io.current_umask() == 0o027
        assert os.umask(0o027) == 0o027  # unchanged by either way of reading it
    finally:
        os.umask(old)


def test_cli_output_follows_the_umask_and_leaves_the_input_alone(umask, tmp_path, capsys):
    infile = tmp_path / "cells.h5ad"
    core.make_synthetic(300, 20, 3, seed=1).write_h5ad(infile)
    os.chmod(infile, 0o444)  # read-only, with a mode of its own
    before = (hashlib.sha256(infile.read_bytes()).hexdigest(), os.stat(infile).st_mtime_ns, _mode(infile))
    out = tmp_path / "scored.h5ad"
    rc = cli.main(["score", str(infile), "--label", "label", "--out", str(out), "--epochs", "3", "--quiet",
                   "--no-quality", "--no-calibrate", "--no-genes"])
    assert rc == 0, capsys.readouterr().err
    assert _mode(out) == umask
    after = (hashlib.sha256(infile.read_bytes()).hexdigest(), os.stat(infile).st_mtime_ns, _mode(infile))
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.h5ad", "scored.h5ad"]
