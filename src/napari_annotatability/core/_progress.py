"""Console progress for long runs: a tqdm bar on a terminal, a few plain lines in a log.

A run is fed to :class:`StageProgress` one :class:`~._engine.EpochProgress` at a time.  Each
stage (``p.stage``: training, cross-fitting, calibrating ...) gets its own display, closed as
soon as that stage ends -- at its last epoch, or when the next stage starts -- so a finished
stage never lingers on screen nor is redrawn later with a stale time.

On a terminal (or in a Jupyter kernel) the display is a tqdm bar (tqdm is already a scanpy
dependency) that leaves one line with the stage's final count and time.  Anywhere else --
stderr redirected to a log file or a pipe, a batch job's output -- carriage-return animation
would fill the log with thousands of redraws, so a stage writes one plain line per
:data:`LOG_STEP` of its epochs instead::

    training: 30 % (30/100 epochs, loss 0.412, 2.1 s)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # the engine imports torch: not at run time, for a type
    from ._engine import EpochProgress

__all__ = ["LOG_STEP", "StageProgress", "stage_progress", "tqdm_callback"]

#: a stage's progress in a log: one line each time this fraction of its epochs is done
LOG_STEP = 0.1


def _in_notebook() -> bool:
    """True inside a Jupyter kernel, where tqdm.auto draws a widget, not carriage returns."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython too old or half-initialised: treat as a plain stream
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _interactive(file: TextIO) -> bool:
    """Whether ``file`` is shown live (a terminal or a notebook), rather than recorded in a log."""
    try:
        if file.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return file is sys.stderr and _in_notebook()


class StageProgress:
    """Report a run's progress, one stage at a time, to a terminal bar or plain log lines.

    Call the instance with every :class:`~._engine.EpochProgress` the run yields (it is a
    valid ``progress`` callback of :func:`~._engine.drive`) and :meth:`close` it when the run
    ends, or use it as a context manager.

    Parameters
    ----------
    file
        Where to write; ``sys.stderr`` (as it is when the reporter is made) by default.
    label
        One name for every item (a single training's display name, e.g. ``"label correction"``);
        by default each item's own ``stage``.
    interactive
        Force a tqdm bar (True) or plain lines (False); by default a bar only when ``file``
        is a terminal or a notebook's stderr.
    """

    def __init__(self, *, file: TextIO | None = None, label: str | None = None,
                 interactive: bool | None = None) -> None:
        self.file = sys.stderr if file is None else file
        self.label = label
        self.interactive = _interactive(self.file) if interactive is None else interactive
        self._stage: str | None = None  # the stage shown now; None when none is open
        self._bar: Any = None  # its tqdm bar (interactive)
        self._step = 0  # the last LOG_STEP multiple logged (plain)
        self._epoch = 0
        self._started = time.perf_counter()  # when the stage shown now began

    # -- feeding -------------------------------------------------------------------------
    def __call__(self, p: EpochProgress) -> None:
        """Show one epoch's progress; a new stage closes the previous one first."""
        stage = self.label or p.stage
        total = max(int(p.n_epochs), 1)
        epoch = min(max(int(p.epoch), 0), total)
        if stage != self._stage:
            self.close()
            self._open(stage, total)
        loss = p.loss if p.loss == p.loss else None  # NaN: nothing recorded (label correction)
        if self.interactive:
            self._update_bar(epoch, total, loss)
        else:
            self._log(epoch, total, loss)
        self._epoch = epoch
        if epoch >= total:  # the stage's last epoch: done, close now with its true time
            self.close()

    def close(self) -> None:
        """Close the stage shown now, if any (its bar stays on screen as one finished line)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._stage is not None:
            self._started = time.perf_counter()  # the next stage's set-up counts as its own time
        self._stage = None

    def __enter__(self) -> StageProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- displays ------------------------------------------------------------------------
    def _open(self, stage: str, total: int) -> None:
        self._stage = stage
        self._step = 0
        self._epoch = 0
        if self.interactive:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=stage, unit="epoch", leave=True, file=self.file)

    def _update_bar(self, epoch: int, total: int, loss: float | None) -> None:
        bar = self._bar
        if bar.total != total:
            bar.total = total
        if loss is not None:
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        bar.update(epoch - bar.n)  # backwards after a restart (a diverged run starts again)

    def _log(self, epoch: int, total: int, loss: float | None) -> None:
        step = int(epoch / total / LOG_STEP + 1e-9)  # LOG_STEP multiples reached so far
        if epoch < self._epoch:  # a restart: log again from where it is
            self._step = step
            return
        if step <= self._step and epoch < total:
            return
        self._step = step
        seconds = time.perf_counter() - self._started
        details = f"{epoch}/{total} epochs" + (f", loss {loss:.3f}" if loss is not None else "") + f", {seconds:.1f} s"
        print(f"{self._stage}: {100 * epoch // total} % ({details})", file=self.file, flush=True)


@contextmanager
def stage_progress(*, enabled: bool = True, label: str | None = None) -> Iterator[Callable | None]:
    """A :class:`StageProgress` for a run (closed at its end), or None when ``enabled`` is False."""
    if not enabled:
        yield None
        return
    with StageProgress(label=label) as show:
        yield show


@contextmanager
def tqdm_callback(total: int, desc: str, *, enabled: bool = True) -> Iterator[Callable | None]:
    """Progress of a single training named ``desc``: a bar on a terminal, plain lines in a log.

    ``total`` is unused: every progress item carries its own ``n_epochs`` (a stored recipe or
    a seed ensemble may change it); the argument stays so that callers need not change.
    """
    del total
    with stage_progress(enabled=enabled, label=desc) as show:
        yield show
