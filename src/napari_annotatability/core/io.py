"""Reading and writing ``.h5ad`` with clear errors and atomic, input-safe writes."""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from .errors import AnnotatabilityInputError

__all__ = ["read_h5ad", "write_h5ad", "check_output_path", "atomic_write"]


def read_h5ad(path: str | os.PathLike, *, backed: bool = False):
    """Read an ``.h5ad`` file, turning every failure into one clear message.

    ``backed=True`` leaves X on disk (anndata's ``backed="r"``): training then reads it a batch
    at a time, so memory is bounded by the batch and the model, not by the data.
    """
    import anndata as ad

    p = Path(path)
    if not p.exists():
        raise AnnotatabilityInputError(f"input file not found: {p}")
    if p.is_dir():
        raise AnnotatabilityInputError(f"input is a folder, expected an .h5ad file: {p}")
    try:
        return ad.read_h5ad(p, backed="r" if backed else None)
    except PermissionError as err:
        raise AnnotatabilityInputError(f"cannot read {p}: permission denied") from err
    except Exception as err:  # h5py/anndata raise many types for a corrupt or foreign file
        raise AnnotatabilityInputError(f"cannot read {p} as an .h5ad file ({type(err).__name__}: {err})") from err


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(path: str | os.PathLike, *, protect: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Fail early (and clearly) if ``path`` is a protected input or its folder is unusable."""
    out = Path(path)
    for src in protect:
        if src is not None and (_same_file(out, Path(src)) or out.resolve() == Path(src).resolve()):
            raise AnnotatabilityInputError(f"refusing to overwrite the input file {src}; choose another output path")
    if out.is_dir():
        raise AnnotatabilityInputError(f"output path is a folder, expected a file name: {out}")
    folder = out.resolve().parent
    if not folder.is_dir():
        raise AnnotatabilityInputError(f"output folder does not exist: {folder}")
    try:  # try it: permission bits say nothing to root, nor about read-only mounts
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        raise AnnotatabilityInputError(f"output folder is not writable: {folder} ({err.strerror or err})") from err
    return out


def write_h5ad(adata, path: str | os.PathLike, *, protect: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Write ``adata`` to ``path`` atomically; refuse to overwrite any file in ``protect``.

    The data goes to a temporary file in the target folder first and is moved into place only
    when complete, so a failure (disk full, permission, crash) never leaves a half-written or
    clobbered file behind.
    """
    return atomic_write(check_output_path(path, protect=protect), adata.write_h5ad)


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's file-creation mask, read without changing it where the system allows.

    Linux reports it in ``/proc/self/status`` (since 4.7); elsewhere it is read the only
    portable way, by setting and restoring it, under a lock so that two writers of this
    package never see each other's temporary zero mask.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _final_mode(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would leave: an existing file's own, else 0o666 less the umask."""
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        return stat.S_IMODE(st.st_mode)
    return 0o666 & ~current_umask()


def atomic_write(path: str | os.PathLike, write: Callable[[str], object], *, suffix: str = ".tmp") -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place.

    The file ends with the permissions a plain ``open(path, "w")`` would give it -- those of
    the file it replaces, else ``0o666`` less the umask -- not the owner-only ``0o600`` of the
    temporary file, so colleagues can read what the user's umask lets them read.
    A failure removes the temporary file and leaves any existing ``path`` untouched; an
    ``OSError`` (disk full, permission) becomes one clear :class:`AnnotatabilityInputError`.
    """
    out = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=suffix, dir=out.resolve().parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _final_mode(out))
        os.replace(tmp, out)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise AnnotatabilityInputError(f"could not write {out}: {err.strerror or err}") from err
        raise
    return out
