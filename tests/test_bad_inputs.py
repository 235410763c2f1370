"""The bad-input matrix: what users bring, and what each gets back.

Every case asserts the same three things a user relies on: one clear message (naming the key,
the shape, the file), no traceback, and nothing lost -- the input file's bytes unchanged and
no output, whole or half, left behind.  Cases already covered elsewhere are listed in
docs/bad_inputs.md with the test that covers them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_annotatability import cli, core
from napari_annotatability.core import keys


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spatial(n=200, seed=1) -> ad.AnnData:
    return core.make_synthetic_tissue(n_spots=n, seed=seed)


def _readonly_dir(tmp_path: Path) -> Path:
    """A folder nobody can write to (root ignores permission bits: use a read-only mount)."""
    if os.geteuid() == 0:
        return Path("/sys")  # sysfs is mounted read-only in containers and refuses new files
    d = tmp_path / "readonly"
    d.mkdir()
    d.chmod(0o500)
    return d


def _leftovers(folder: Path, before: set[str]) -> set[str]:
    return {p.name for p in folder.iterdir()} - before


# ---------------------------------------------------------------------------------------------
# reader: a file opened in napari
def _reader_cases(tmp_path: Path) -> dict:
    good = _spatial()
    truncated = tmp_path / "truncated.h5ad"
    good.write_h5ad(truncated)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    one_col = good.copy()
    one_col.obsm["spatial"] = one_col.obsm["spatial"][:, :1]
    nan_xy = good.copy()
    nan_xy.obsm["spatial"] = nan_xy.obsm["spatial"].astype(float)
    nan_xy.obsm["spatial"][3] = np.nan
    text_xy = good.copy()
    del text_xy.obsm["spatial"]
    text_xy.uns.pop("spatial")
    text_xy.obs["x"] = [f"{v:.0f}px" for v in good.obsm["spatial"][:, 0]]
    text_xy.obs["y"] = good.obsm["spatial"][:, 1]
    no_factor = good.copy()
    lib = next(iter(no_factor.uns["spatial"]))
    del no_factor.uns["spatial"][lib]["scalefactors"]["tissue_hires_scalef"]
    zero_factor = good.copy()
    zero_factor.uns["spatial"][lib]["scalefactors"]["tissue_hires_scalef"] = 0.0
    empty = good[:0].copy()
    cases = {"truncated file": (truncated, "could not open")}
    for name, adata, msg in (
        ("spatial with one column", one_col, "expected (n_obs, 2)"),
        ("NaN coordinates", nan_xy, "NaN/inf coordinates"),
        ("non-numeric x/y columns", text_xy, "not numeric"),
        ("image without its scale factor", no_factor, "tissue_hires_scalef"),
        ("zero scale factor", zero_factor, "must be > 0"),
        ("no cells", empty, "no cells"),
    ):
        path = tmp_path / f"{name.replace(' ', '_').replace('/', '_')}.h5ad"
        adata.write_h5ad(path)
        cases[name] = (path, msg)
    return cases


READER_CASES = ["truncated file", "spatial with one column", "NaN coordinates", "non-numeric x/y columns",
                "image without its scale factor", "zero scale factor", "no cells"]


@pytest.fixture
def notes(monkeypatch):
    """Every napari error / warning notification, instead of showing it."""
    seen = {"error": [], "warning": []}
    monkeypatch.setattr("napari.utils.notifications.show_error", seen["error"].append)
    monkeypatch.setattr("napari.utils.notifications.show_warning", seen["warning"].append)
    return seen


@pytest.mark.parametrize("case", READER_CASES)
@pytest.mark.slow
def test_reader_bad_file_is_one_notification_and_no_layer(case, tmp_path, notes):
    pytest.importorskip("napari")
    from napari_annotatability._napari._reader import read_spatial

    path, message = _reader_cases(tmp_path)[case]
    before = _digest(path)
    layers = read_spatial(str(path))
    assert layers == [(None,)]
    assert len(notes["error"]) == 1 and message in notes["error"][0], notes["error"]
    assert path.name in notes["error"][0] and "Traceback" not in notes["error"][0]
    assert _digest(path) == before


@pytest.mark.slow
def test_reader_spots_off_the_image_load_with_a_warning(tmp_path, notes):
    pytest.importorskip("napari")
    from napari_annotatability._napari._reader import read_spatial

    adata = _spatial()
    lib = next(iter(adata.uns["spatial"]))
    adata.uns["spatial"][lib]["scalefactors"]["tissue_hires_scalef"] *= 10  # image shown 10x too small
    path = tmp_path / "mismatch.h5ad"
    adata.write_h5ad(path)
    layers = read_spatial(str(path))
    assert [t for *_, t in layers] == ["image", "points"]  # still opens: training needs no image
    assert not notes["error"] and len(notes["warning"]) == 1
    assert "outside the hires tissue image" in notes["warning"][0] and "tissue_hires_scalef" in notes["warning"][0]
    # a correct file gives no warning
    notes["warning"].clear()
    _spatial().write_h5ad(tmp_path / "ok.h5ad")
    read_spatial(str(tmp_path / "ok.h5ad"))
    assert not notes["warning"]


def test_reader_repeated_cell_names_are_made_unique_in_the_viewer_only(tmp_path, notes):
    pytest.importorskip("napari")
    from napari_annotatability._napari._reader import read_spatial

    adata = _spatial()
    names = adata.obs_names.to_numpy().copy()
    names[1] = names[0]
    adata.obs_names = names
    path = tmp_path / "dups.h5ad"
    adata.write_h5ad(path)
    before = _digest(path)
    layers = read_spatial(str(path))
    opened = layers[-1][1]["metadata"]["adata"]
    assert opened.obs_names.is_unique and len(notes["warning"]) == 1 and "1 repeated cell names" in notes["warning"][0]
    assert _digest(path) == before


# ---------------------------------------------------------------------------------------------
# command line
@pytest.fixture
def infile(tmp_path):
    p = tmp_path / "cells.h5ad"
    core.make_synthetic(300, 20, 3, seed=1).write_h5ad(p)
    return p


def _cli_cases(infile: Path, tmp_path: Path) -> dict:
    good = ad.read_h5ad(infile)
    continuous = good.copy()
    continuous.obs["score"] = np.linspace(0, 1, good.n_obs).astype(str)
    tiny = good[:2].copy()
    tiny.obs["label"] = pd.Categorical(["a", "b"])
    files = {}
    for name, adata in (("continuous", continuous), ("tiny", tiny)):
        files[name] = tmp_path / f"{name}.h5ad"
        adata.write_h5ad(files[name])
    link = tmp_path / "link_to_input.h5ad"
    link.symlink_to(infile)
    out_dir = tmp_path / "an_existing_folder.h5ad"
    out_dir.mkdir()
    ro = _readonly_dir(tmp_path)
    return {
        # name: (input, extra args, output, message)
        "read-only output folder": (infile, [], ro / "out.h5ad", "not writable"),
        "output is a folder": (infile, [], out_dir, "is a folder"),
        "output is the input through a link": (infile, [], link, "refusing to overwrite the input"),
        "input is a folder": (tmp_path, [], None, "is a folder"),
        "missing layer": (infile, ["--layer", "counts"], None, "layer 'counts' is not in adata.layers"),
        "negative learning rate": (infile, ["--lr", "-0.1"], None, "lr (learning rate) must be > 0"),
        "zero batch size": (infile, ["--batch-size", "0"], None, "batch_size must be an integer >= 1"),
        "noise outside (0, 1)": (infile, ["--noise", "1.5"], None, "noise"),
        "one cut-off without the other": (infile, ["--conf-cutoff", "0.5"], None, "give both"),
        "per-cell label column": (files["continuous"], ["--label", "score"], None, "distinct labels"),
        "two cells": (files["tiny"], [], None, "at least 4 cells"),
        "default rule without the out-of-sample check": (infile, ["--no-quality"], None, "--rule paper"),
        "the paper's cut-offs under the default rule": (infile, ["--conf-cutoff", "0.5", "--var-cutoff", "0.1"], None,
                                                        "cut-offs of rule='paper'"),
    }


CLI_CASES = ["read-only output folder", "output is a folder", "output is the input through a link",
             "input is a folder", "missing layer", "negative learning rate", "zero batch size",
             "noise outside (0, 1)", "one cut-off without the other", "per-cell label column", "two cells",
             "default rule without the out-of-sample check", "the paper's cut-offs under the default rule"]


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_bad_input_is_one_line_and_writes_nothing(case, infile, tmp_path, capsys):
    src, extra, out, message = _cli_cases(infile, tmp_path)[case]
    out = out or tmp_path / "out.h5ad"
    args = ["score", str(src), "--out", str(out), "--quiet", "--epochs", "2"]
    if "--label" not in extra:
        args += ["--label", "label"]
    inputs = [p for p in tmp_path.iterdir() if p.is_file() and not p.is_symlink()]
    before = {p: _digest(p) for p in inputs}
    listing = {p.name for p in tmp_path.iterdir()}
    rc = cli.main(args + extra)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("napari-annotatability: error:") and message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert {p: _digest(p) for p in inputs} == before
    assert _leftovers(tmp_path, listing) == set()
    if out.parent != tmp_path and out.parent.is_dir():
        assert not out.exists() or out.is_dir()


def test_cli_no_cuda_is_a_clear_error(infile, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rc = cli.main(["score", str(infile), "--label", "label", "--out", str(tmp_path / "o.h5ad"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert rc == 2 and "no CUDA GPU" in err and not (tmp_path / "o.h5ad").exists()


def test_cli_disk_full_midway_keeps_the_old_output_and_leaves_no_temp_file(infile, tmp_path, monkeypatch, capsys):
    """A disk that fills up while the output is written (a writer that fails half way)."""
    out = tmp_path / "scored.h5ad"
    shutil.copy(infile, out)  # an earlier result the user keeps
    before_out, before_in = _digest(out), _digest(infile)
    real = ad.AnnData.write_h5ad

    def fills_up(self, path, *a, **k):
        real(self, path, *a, **k)
        with open(path, "r+b") as fh:
            fh.truncate(1000)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", fills_up)
    listing = {p.name for p in tmp_path.iterdir()}
    rc = cli.main(["score", str(infile), "--label", "label", "--out", str(out), "--epochs", "2", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "No space left on device" in err and str(out) in err
    assert _digest(out) == before_out and _digest(infile) == before_in
    assert _leftovers(tmp_path, listing) == set()


def test_repeated_cell_names_are_scored_and_kept(tmp_path, capsys):
    """Not an error: scores go by position, and the output keeps the names as they were."""
    a = core.make_synthetic(300, 20, 3, seed=1)
    names = a.obs_names.to_numpy().copy()
    names[:10] = "dup"
    a.obs_names = names
    p = tmp_path / "dups.h5ad"
    a.write_h5ad(p)
    assert cli.main(["score", str(p), "--label", "label", "--out", str(tmp_path / "o.h5ad"), "--epochs", "2",
                     "--quiet"]) == 0
    out = ad.read_h5ad(tmp_path / "o.h5ad")
    assert list(out.obs_names) == list(names) and out.obs[keys.CONFIDENCE].notna().all()


# ---------------------------------------------------------------------------------------------
# widgets: a notification and a status line, never a traceback; the AnnData untouched
widget_mark = pytest.mark.skipif(shutil.which("Xvfb") is None and not os.environ.get("DISPLAY"),
                                 reason="needs a display (Xvfb)")


@pytest.fixture
def demo(make_napari_viewer):
    pytest.importorskip("napari")
    from napari_annotatability._napari._demo import open_demo

    viewer = make_napari_viewer()
    return open_demo(viewer)


def _train_expecting_failure(widget, qtbot):
    widget.adaptive.value = False
    widget.epochs.value = 2
    worker = widget.train(start=False)
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        worker.start()


@widget_mark
@pytest.mark.slow
def test_widget_offers_only_columns_that_can_be_trained_on(demo):
    """One-class, per-cell and boolean columns cannot be picked, so they cannot fail a training."""
    viewer, widget = demo
    adata = widget.layer_combo.value.metadata["adata"]
    adata.obs["same"] = pd.Categorical(["x"] * adata.n_obs)
    adata.obs["cell_id"] = pd.Categorical([f"c{i}" for i in range(adata.n_obs)])
    adata.obs["flag"] = np.arange(adata.n_obs) % 2 == 0
    widget._on_layer_changed()
    assert {"same", "cell_id", "flag"}.isdisjoint(widget.label_combo.choices)
    assert "label" in widget.label_combo.choices


@widget_mark
@pytest.mark.parametrize("case", ["infinite expression", "expression removed"])
@pytest.mark.slow
def test_widget_bad_training_input_is_a_notification(case, demo, qtbot, notes):
    viewer, widget = demo
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    if case == "infinite expression":
        adata.X[7, 3] = np.inf
        message = "NaN or infinite"
    else:  # e.g. a notebook emptied X of the object the viewer holds
        adata.X = None
        message = "adata.X is empty"
    obs_before = adata.obs.copy()
    _train_expecting_failure(widget, qtbot)
    assert len(notes["error"]) == 1 and message in notes["error"][0] and "Traceback" not in notes["error"][0]
    assert "Training failed" in widget.status.text() and widget.train_button.isEnabled()
    pd.testing.assert_frame_equal(adata.obs, obs_before)  # nothing written
    assert keys.UNS not in adata.uns


@widget_mark
@pytest.mark.slow
def test_widget_export_failures_are_notifications_and_write_nothing(demo, tmp_path, notes):
    viewer, widget = demo
    ro = _readonly_dir(tmp_path)
    listing = {p.name for p in tmp_path.iterdir()}
    assert widget.export(ro / "spots.h5ad") is None
    assert widget.export(tmp_path / "spots.txt") is None
    src = tmp_path / "source.h5ad"
    widget.layer_combo.value.metadata["adata"].write_h5ad(src)
    digest = _digest(src)
    widget.layer_combo.value.metadata["source_path"] = str(src)
    assert widget.export(src) is None
    assert widget.save_figure(tmp_path / "missing" / "fig.png") is None
    msgs = notes["error"]
    assert len(msgs) == 4
    assert "not writable" in msgs[0] and "cannot export to .txt" in msgs[1]
    assert "refusing to overwrite the input" in msgs[2] and "does not exist" in msgs[3]
    assert _digest(src) == digest and _leftovers(tmp_path, listing | {"source.h5ad"}) == set()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


@widget_mark
@pytest.mark.slow
def test_deleting_the_layer_while_training_is_not_a_crash(demo, qtbot, notes):
    viewer, widget = demo
    layer = widget.layer_combo.value
    adata = layer.metadata["adata"]
    widget.adaptive.value = False
    widget.epochs.value = 40
    widget.calibrate.value = False
    worker = widget.train(start=False)
    removed = []

    def remove(p):
        if not removed and p.epoch == 2:
            viewer.layers.remove(layer)
            removed.append(True)

    worker.yielded.connect(remove)
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        worker.start()
    assert removed and not widget.is_training and widget.train_button.isEnabled()
    assert not notes["error"]
    assert keys.CONFIDENCE in adata.obs  # the results still reach the AnnData the user had open
    assert widget.layer_combo.value is None or widget.layer_combo.value is not layer


@widget_mark
@pytest.mark.slow
def test_docks_before_any_training_say_what_to_do(demo, notes):
    viewer, widget = demo
    docks = {name: widget.open_dock(f"Annotatability {name}")
             for name in ("data map", "region inspector", "genes", "communities", "spot inspector")}
    assert docks["data map"].info.text().startswith("Train first")
    assert docks["genes"].info.text().startswith("Train first")
    assert docks["communities"].status.text().startswith("Train first")
    assert docks["region inspector"].text.text().startswith("Draw a polygon")
    assert docks["spot inspector"].title.text().startswith("Click a spot")
    assert not notes["error"]
    # pressing Build anyway is one notification, not a traceback
    assert docks["communities"].run() is None
    assert len(notes["error"]) == 1 and "train with the Annotatability widget first" in notes["error"][0]


@widget_mark
@pytest.mark.slow
def test_a_plain_points_layer_is_not_offered_for_training(demo):
    viewer, widget = demo
    viewer.add_points(np.random.default_rng(0).random((20, 2)) * 100, name="my clicks")
    widget._reset_choices()
    assert [lyr.name for lyr in widget._spot_layers()] == ["synthetic spots"]
