"""Offline checks of benchmarks/real_data.py: extraction from a wheel / an sdist, caching, errors.

No network: the pip download is replaced by a copy of a small archive built here.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import real_data  # noqa: E402


def _tiny_h5ad(path: Path) -> Path:
    X = sp.csr_matrix(np.array([[1, 0, 3], [0, 2, 0], [4, 0, 0], [0, 0, 7], [5, 5, 0]], dtype=np.float32))
    obs = pd.DataFrame({"kind": pd.Categorical(["a", "a", "b", "b", "lonely"])}, index=[f"c{i}" for i in range(5)])
    adata = ad.AnnData(X, obs=obs)
    adata.obsm["spatial"] = np.arange(10, dtype=float).reshape(5, 2)
    adata.write_h5ad(path)
    return path


@pytest.fixture
def archives(tmp_path):
    h5ad = _tiny_h5ad(tmp_path / "tiny.h5ad")
    wheel = tmp_path / "fakepkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(h5ad, "fakepkg/data/tiny.h5ad")
        zf.writestr("fakepkg/__init__.py", "")
    sdist = tmp_path / "fakepkg-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        tf.add(h5ad, "fakepkg-1.0/sample_data/tiny.h5ad")
        info = tarfile.TarInfo("fakepkg-1.0/sample_data/other.csv")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"x,y\n"))
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture
def fake_pip(archives, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv(real_data.ENV_VAR, str(cache))
    calls = []

    def download(package, version, kind, dest):
        calls.append((package, version, kind))
        assert Path(dest).parent == cache / f"{package}-{version}"  # temp dir inside the cache
        return Path(shutil.copy(archives[kind], dest))

    monkeypatch.setattr(real_data, "_pip_download", download)
    return cache, calls


@pytest.mark.parametrize(("kind", "member"), [("wheel", "fakepkg/data/tiny.h5ad"), ("sdist", "sample_data/tiny.h5ad")])
def test_fetch_extracts_once_then_reuses_cache(fake_pip, kind, member):
    cache, calls = fake_pip
    (path,) = real_data.fetch("fakepkg", "1.0", [member], kind=kind)
    assert path == cache / "fakepkg-1.0" / member
    assert ad.read_h5ad(path).n_obs == 5
    # only the asked file came out; the temp download folder and the archive are gone
    left = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())
    assert left == [f"fakepkg-1.0/{member}"]
    assert not [p for p in (cache / "fakepkg-1.0").iterdir() if p.name.startswith(".")]
    # second call: no download
    again = real_data.fetch("fakepkg", "1.0", [member], kind=kind)
    assert again == [path] and len(calls) == 1


def test_missing_member_is_an_error(fake_pip):
    with pytest.raises(RuntimeError, match="holds no sample_data/absent.h5ad"):
        real_data.fetch("fakepkg", "1.0", ["sample_data/absent.h5ad"], kind="sdist")


def test_cache_root_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv(real_data.ENV_VAR, raising=False)
    assert real_data.cache_dir("p", "1") == Path.home() / ".cache/napari-annotatability/bench-data/p-1"
    monkeypatch.setenv(real_data.ENV_VAR, str(tmp_path))
    assert real_data.cache_dir("p", "1") == tmp_path / "p-1"


def test_failed_download_says_what_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv(real_data.ENV_VAR, str(tmp_path / "cache"))

    def offline(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for fakepkg==1.0")

    monkeypatch.setattr(real_data.subprocess, "run", offline)
    with pytest.raises(RuntimeError) as err:
        real_data.fetch("fakepkg", "1.0", ["sample_data/tiny.h5ad"], kind="sdist")
    msg = str(err.value)
    assert "fakepkg==1.0" in msg and "sdist" in msg
    assert "pip download --no-deps --no-binary :all:" in msg
    assert "No matching distribution" in msg
    assert str(tmp_path / "cache" / "fakepkg-1.0" / "sample_data" / "tiny.h5ad") in msg
    assert not list((tmp_path / "cache" / "fakepkg-1.0").iterdir())  # temp folder cleaned up


def test_finish_cleans_labels(fake_pip, capsys):
    (path,) = real_data.fetch("fakepkg", "1.0", ["fakepkg/data/tiny.h5ad"], kind="wheel")
    adata = real_data._finish(ad.read_h5ad(path), "kind", "tiny")
    assert "'lonely' (1)" in capsys.readouterr().out
    assert list(adata.obs["label"].cat.categories) == ["a", "b"]
    assert adata.n_obs == 4 and sp.issparse(adata.X) and "spatial" in adata.obsm
    assert real_data.describe(adata)["integer"] and not real_data.describe(adata)["negatives"]


def test_registry_shape():
    assert set(real_data.REAL_DATASETS) == {"pbmc", "wu2020", "scfates", "flowsom",
                                            "dlpfc_151674", "dlpfc_151675", "dlpfc_151676"}
    for title, loader, epochs in real_data.REAL_DATASETS.values():
        assert isinstance(title, str) and callable(loader) and epochs in (100, 150)
    with pytest.raises(KeyError, match="choose from"):
        real_data.load("nope")
