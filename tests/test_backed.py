"""Training on an on-disk X (anndata backed mode) gives what training in memory gives."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from napari_annotatability import cli, core
from napari_annotatability.core import keys
from napari_annotatability.core._data import BackedMatrix, get_matrix
from napari_annotatability.core.genes import expression


@pytest.fixture
def sparse_file(tmp_path):
    a = core.make_synthetic(900, 60, 4, seed=3)
    a.X = sp.csr_matrix(np.where(a.X > 0.5, a.X, 0).astype(np.float32))
    path = tmp_path / "sparse.h5ad"
    a.write_h5ad(path)
    return path


def _read(path, backed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path, backed="r" if backed else None)


def test_backed_sparse_scores_equal_in_memory_scores(sparse_file):
    mem, disk = _read(sparse_file, False), _read(sparse_file, True)
    assert isinstance(get_matrix(disk), BackedMatrix)
    core.score(mem, "label", seed=0, epochs=8)
    core.score(disk, "label", seed=0, epochs=8)
    for k in (keys.CONFIDENCE, keys.VARIABILITY, keys.AUM, keys.LABEL_QUALITY, keys.CATEGORY, keys.SUGGESTED_LABEL):
        np.testing.assert_array_equal(mem.obs[k].to_numpy(), disk.obs[k].to_numpy(), err_msg=k)
    np.testing.assert_allclose(mem.var[keys.GENE_LOW], disk.var[keys.GENE_LOW], atol=1e-6)
    gene = mem.var_names[7]
    np.testing.assert_allclose(expression(mem, gene), expression(disk, gene))


def test_backed_dense_scores_equal_in_memory_scores(tmp_path):
    a = core.make_synthetic(500, 30, 3, seed=4)
    path = tmp_path / "dense.h5ad"
    a.write_h5ad(path)
    mem, disk = _read(path, False), _read(path, True)
    core.training_dynamics(mem, "label", seed=1, epochs=5)
    core.training_dynamics(disk, "label", seed=1, epochs=5)
    np.testing.assert_array_equal(mem.obs[keys.CONFIDENCE].to_numpy(), disk.obs[keys.CONFIDENCE].to_numpy())


@pytest.mark.parametrize("kind", ["counts", "intensities"])
def test_a_streamed_backed_input_scores_as_the_same_input_transformed_once_in_memory(tmp_path, monkeypatch, kind):
    """Backed inputs are transformed batch by batch above MATERIALISE_BACKED_BYTES (memory stays
    bounded by the batch) while the same data in memory is transformed once: same scores, bit for bit."""
    from napari_annotatability.core import inputs

    rng = np.random.default_rng(5)
    a = core.make_synthetic(400, inputs.N_TOP_GENES + 40 if kind == "counts" else 30, 4, seed=5)
    if kind == "counts":  # raw counts: normalise, log1p, gene subset, standardise (every step)
        a.X = sp.csr_matrix(rng.poisson(np.exp(np.clip(a.X, -2, 3))).astype(np.float32))
    else:  # a fluorescence-like panel: log1p, standardise
        a.X = (np.exp(np.clip(a.X, -2, 6)) * 400).astype(np.float32)
    path = tmp_path / f"{kind}.h5ad"
    a.write_h5ad(path)
    monkeypatch.setattr(inputs, "MATERIALISE_BACKED_BYTES", 0)  # the backed input streams
    mem, disk = _read(path, False), _read(path, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        core.training_dynamics(mem, "label", seed=2, epochs=4)
        core.training_dynamics(disk, "label", seed=2, epochs=4)
    assert mem.uns[keys.UNS]["params"]["input"]["kind"] == ("counts" if kind == "counts" else "intensities")
    np.testing.assert_array_equal(mem.obsm[keys.TRAJECTORY], disk.obsm[keys.TRAJECTORY])


def test_backed_rows_come_back_in_the_order_asked(sparse_file):
    disk = _read(sparse_file, True)
    mem = _read(sparse_file, False).X
    B = get_matrix(disk)
    idx = np.array([5, 3, 4, 4, 899, 0, 100, 101, 102])  # repeats, runs, both ends
    np.testing.assert_array_equal(B.rows(idx).toarray(), mem[idx].toarray())
    np.testing.assert_array_equal(B[10:20].toarray(), mem[10:20].toarray())


def test_backed_nonfinite_or_by_gene_matrix_is_a_clear_error(tmp_path):
    a = core.make_synthetic(200, 10, 3, seed=2)
    a.X = sp.csr_matrix(a.X)
    a.X.data[3] = np.nan
    a.write_h5ad(tmp_path / "nan.h5ad")
    with pytest.raises(core.AnnotatabilityInputError, match="NaN or infinite"):
        core.training_dynamics(_read(tmp_path / "nan.h5ad", True), "label", epochs=1)
    b = core.make_synthetic(200, 10, 3, seed=2)
    b.X = sp.csc_matrix(b.X)
    b.write_h5ad(tmp_path / "csc.h5ad")
    with pytest.raises(core.AnnotatabilityInputError, match="CSC"):
        core.training_dynamics(_read(tmp_path / "csc.h5ad", True), "label", epochs=1)


def test_cli_backed_writes_the_same_scores(sparse_file, tmp_path, capsys):
    out_mem, out_disk = tmp_path / "mem.h5ad", tmp_path / "disk.h5ad"
    assert cli.main(["score", str(sparse_file), "--label", "label", "--out", str(out_mem), "--quiet",
                     "--epochs", "4"]) == 0
    assert cli.main(["score", str(sparse_file), "--label", "label", "--out", str(out_disk), "--quiet",
                     "--epochs", "4", "--backed"]) == 0
    a, b = _read(out_mem, False), _read(out_disk, False)
    np.testing.assert_array_equal(a.obs[keys.LABEL_QUALITY].to_numpy(), b.obs[keys.LABEL_QUALITY].to_numpy())
    assert (a.X != b.X).nnz == 0  # the expression matrix is copied through unchanged
    rc = cli.main(["score", str(sparse_file), "--label", "label", "--out", str(tmp_path / "x.h5ad"),
                   "--backed", "--preprocess"])
    assert rc == 2 and "--backed" in capsys.readouterr().err
