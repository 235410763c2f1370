"""Run a worker's slots one at a time, never one inside another.

A ``thread_worker``'s signals are queued to the main thread.  napari calls
``QApplication.processEvents`` from inside ordinary calls -- its progress bar's ``setValue``, a
notification, the contrast-limits control -- and that delivers the next queued signal *inside*
the slot that made the call.  With a fast worker and a busy main thread this nests without bound
(a ``RecursionError`` from ``QtLabeledProgressBar.setValue``, or an abort), and a result can be
written while a live recolour of the previous epoch is half done.

:class:`SerialSlots` keeps one queue per worker: a slot that is called while another of the same
queue runs is queued and run after it, in arrival order; progress (``coalesce=True``) keeps only
its latest value.  The stack never holds two of them.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SerialSlots"]


class SerialSlots:
    """Serialise the slots connected through :meth:`wrap` (see the module's docstring)."""

    def __init__(self) -> None:
        self._queue: deque = deque()
        self._running = False
        self.closed = False

    def wrap(self, func, *, coalesce: bool = False):
        """A slot for ``signal.connect`` that runs ``func`` through this queue."""

        def slot(*args) -> None:
            self.call(func, args, coalesce=coalesce)

        return slot

    @property
    def running(self) -> bool:
        """True while one of the slots runs (a call now would be queued)."""
        return self._running

    def close(self) -> None:
        """Drop what is queued and refuse what comes later (the worker is done with)."""
        self.closed = True
        self._queue.clear()

    def call(self, func, args=(), *, coalesce: bool = False) -> None:
        """Run ``func(*args)`` now, or after the slot that is running (only the latest if ``coalesce``)."""
        if self.closed:
            return
        if coalesce and self._queue and self._queue[-1][0] is func:
            self._queue[-1] = (func, args)
        else:
            self._queue.append((func, args))
        if self._running:
            return
        self._running = True
        error = None
        try:
            while self._queue and not self.closed:
                f, a = self._queue.popleft()
                try:
                    f(*a)
                except Exception as exc:  # noqa: BLE001 - the slots queued behind it still run
                    error = error or exc
        finally:
            self._running = False
        if error is not None:
            raise error  # Qt reports it (napari: a notification; pytest-qt: a failed test)
