"""How many threads torch may use while training, chosen for the machine as it is now.

torch starts one intra-op thread per core and its OpenMP workers spin while they wait.  On a
shared machine that is the worst choice: with one of two cores busy elsewhere, ``core.score`` on
5 000 x 200 cells took about 5x its idle time with torch's default threads, and 12x at a load
of ~4 (``benchmarks/bench_contention.py``; docs/benchmarks.md).  The smallest networks gain
little from a second thread in the first place (``--shapes``).

:class:`ThreadGovernor` therefore

- never gives a network more than one thread when a training step is too small to split
  (``PARALLEL_MIN_FLOPS``, measured by ``benchmarks/bench_contention.py``);
- otherwise starts from what the last measurement left free (or, with none recent, from the
  processes runnable over a few milliseconds) and, every ``INTERVAL`` seconds of training,
  measures how much of *our* CPUs other processes used meanwhile (``/proc/stat``
  for the CPUs this process may run on, minus this process's own CPU time) and sets the
  thread count to the cores left over -- so a busy core elsewhere costs about its fair share.
  It gives a thread back at once but takes one only when two measurements in a row (or the
  start's estimate and the first measurement) agree: a process passing through for half a
  second (a shell command, a cron job) does not halve an idle machine's training;
- leaves one core to the main thread when training runs in a worker thread (napari's GUI
  thread draws while the worker trains);
- changes nothing when the user chose: ``threads=`` (:func:`requested_threads`), the
  ``NAPARI_ANNOTATABILITY_THREADS`` environment variable, or torch's own ``OMP_NUM_THREADS`` /
  ``MKL_NUM_THREADS``.

The thread count does not change results: the network's matrix products split rows and
columns, never the summed dimension, so scores are identical with 1 or 2 threads (tested).
On systems without ``/proc/stat`` the count is chosen once from the CPUs and the workload.
"""

from __future__ import annotations

import numbers
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

__all__ = [
    "ENV_VAR",
    "INTERVAL",
    "PARALLEL_MIN_FLOPS",
    "ThreadGovernor",
    "available_cpus",
    "requested_threads",
    "step_flops",
    "user_threads",
]

#: environment variable that fixes the thread count (an integer >= 1)
ENV_VAR = "NAPARI_ANNOTATABILITY_THREADS"
#: torch's own variables: when the user set one, torch already follows it and so do we
TORCH_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: seconds of training between two measurements of the load
INTERVAL = 0.5
#: multiply-adds of one training step (batch x sum of layer in x out, forward and backward)
#: below which a second thread does not pay: measured idle on 2 cores (bench_contention.py
#: --shapes), a second thread gains 5-9 % at 20-50 input features (1.5-2.2e6), 16 % at 100,
#: 27 % at 200, 52 % at 300 and 70-80 % from 1 000
PARALLEL_MIN_FLOPS = 3.0e6
#: a core counts as free when others used less than this fraction of it
FREE_SLACK = 0.3
#: a load measured less than this many seconds ago is reused by the next training
RECENT = 5.0
#: with none recent, a training starts from the least of this many run-queue readings, this
#: many seconds apart (a few milliseconds in all, against trainings of a second or more)
START_SAMPLES, START_GAP = 4, 0.002

_lock = threading.Lock()
_requested: int | None = None
#: (monotonic time, CPU-seconds per second that other processes used on our CPUs)
_last_load: tuple[float, float] | None = None


def _positive_int(value, what: str) -> int:
    from .errors import AnnotatabilityInputError

    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise AnnotatabilityInputError(f"{what} must be an integer >= 1, got {value!r}")
    return int(value)


@contextmanager
def requested_threads(threads: int | None) -> Iterator[None]:
    """Within the block, every training uses exactly ``threads`` threads (None: choose)."""
    global _requested
    n = None if threads is None else _positive_int(threads, "threads")
    with _lock:
        previous, _requested = _requested, n
    try:
        yield
    finally:
        with _lock:
            _requested = previous


def user_threads() -> int | None:
    """The thread count the user fixed (argument, then environment), or None to choose."""
    if _requested is not None:
        return _requested
    value = os.environ.get(ENV_VAR, "").strip()
    if value:
        return _positive_int(value, ENV_VAR)
    for var in TORCH_ENV_VARS:
        value = os.environ.get(var, "").strip()
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                continue
    return None


def _affinity() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _cgroup_cpus() -> float | None:
    """The CPU quota of this process's cgroup (v2 ``cpu.max`` or v1 cfs), in cores; None if unlimited."""
    candidates = [("/sys/fs/cgroup/cpu.max", None),
                  ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")]
    for quota_path, period_path in candidates:
        try:
            with open(quota_path) as fh:
                parts = fh.read().split()
            if period_path is None:
                if parts[0] == "max":
                    return None
                quota, period = float(parts[0]), float(parts[1])
            else:
                with open(period_path) as fh:
                    quota, period = float(parts[0]), float(fh.read().split()[0])
                if quota <= 0:
                    return None
            return quota / period if period > 0 else None
        except (OSError, ValueError, IndexError):
            continue
    return None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup quota."""
    cpus = _affinity()
    n = len(cpus) if cpus else (os.cpu_count() or 1)
    quota = _cgroup_cpus()
    if quota is not None:
        n = min(n, max(1, int(quota + 0.5)))
    return max(1, n)


def step_flops(sizes: Sequence[int], batch_size: int) -> float:
    """Multiply-adds of one training step of an MLP with layer ``sizes`` (forward + backward)."""
    return 3.0 * batch_size * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def _own_running() -> int:
    """Threads of this process runnable right now (torch's workers spin a while after their work)."""
    n = 0
    try:
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/stat") as fh:
                    n += fh.read().rsplit(")", 1)[1].split()[0] == "R"
            except (OSError, IndexError):
                continue
    except OSError:
        return 1
    return max(1, n)


def _runnable_once() -> float | None:
    try:
        with open("/proc/loadavg") as fh:
            running = int(fh.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return float(max(0, running - _own_running()))


def _runnable_others(samples: int = START_SAMPLES, gap: float = START_GAP) -> float:
    """Other processes' runnable threads now: the least of a few ``/proc/loadavg`` running counts.

    One reading races with our own threads (counted there and in ``_own_running`` at slightly
    different instants) and catches processes passing through; a busy process is runnable in
    every reading, so the least of ``samples`` readings ``gap`` seconds apart keeps it and drops
    the rest.
    """
    seen = []
    for i in range(max(1, samples)):
        if i:
            time.sleep(gap)
        value = _runnable_once()
        if value is None:
            return 1.0  # unknown: assume a busy core, the measurement corrects it within INTERVAL
        seen.append(value)
        if value == 0.0:
            break  # nothing else runnable: it cannot get lower
    return min(seen)


class _CpuSampler:
    """CPU time other processes spend on our CPUs, from ``/proc/stat`` deltas."""

    def __init__(self) -> None:
        cpus = _affinity()
        self.lines = None if cpus is None else {f"cpu{c}" for c in cpus}
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.prev = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        """(wall, busy CPU-seconds on our CPUs, this process's CPU-seconds), or None."""
        try:
            with open("/proc/stat") as fh:
                text = fh.read()
        except OSError:
            return None
        busy = 0.0
        found = False
        for line in text.splitlines():
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            name, *fields = line.split()
            if self.lines is not None and name not in self.lines:
                continue
            v = [float(f) for f in fields[:8]]
            busy += sum(v) - v[3] - v[4]  # everything but idle and iowait
            found = True
        if not found:
            return None
        return time.monotonic(), busy / self.tick, time.process_time()

    @property
    def works(self) -> bool:
        return self.prev is not None

    def others(self) -> float | None:
        """CPU-seconds per second other processes used on our CPUs since the last call."""
        now = self._read()
        if now is None or self.prev is None:
            return None
        (w0, b0, p0), (w1, b1, p1) = self.prev, now
        self.prev = now
        if w1 - w0 < 0.1:  # /proc/stat counts in 10 ms ticks
            return None
        return max(0.0, ((b1 - b0) - (p1 - p0)) / (w1 - w0))


class ThreadGovernor:
    """Sets torch's thread count for one training and keeps it fitted to the load.

    Use as a context manager around the training; call :meth:`tick` between batches (it costs
    one clock read unless ``INTERVAL`` has passed).  The previous count is restored on exit.
    """

    def __init__(self, flops_per_step: float, *, interval: float = INTERVAL) -> None:
        self.fixed = user_threads()
        self.cpus = available_cpus()
        # leave a core to the main thread (a GUI) when a worker thread trains
        self.reserve = 0 if threading.current_thread() is threading.main_thread() else 1
        self.useful = 1 if flops_per_step < PARALLEL_MIN_FLOPS else self.cpus
        self.interval = float(interval)
        self.sampler: _CpuSampler | None = None
        self.current = 0
        self._previous = 0
        self._next = 0.0
        self._others: float | None = None  # the last load seen (the start's estimate, then measured)
        self.history: list[int] = []

    def _target(self, others: float) -> int:
        free = self.cpus - others + FREE_SLACK
        return max(1, min(self.useful, int(free) - self.reserve))

    def _set(self, n: int) -> None:
        if n != self.current:
            import torch

            torch.set_num_threads(n)
            self.current = n
            self.history.append(n)

    def __enter__(self) -> ThreadGovernor:
        import torch

        self._previous = torch.get_num_threads()
        if self.fixed is not None:
            self._set(self.fixed)
            return self
        if self.useful == 1:
            self._set(1)
            return self
        self.sampler = _CpuSampler()
        if not self.sampler.works:  # no /proc/stat: the CPUs and the workload decide, once
            self.sampler = None
            self._set(max(1, self.useful - self.reserve))
            return self
        recent = _last_load
        if recent is not None and time.monotonic() - recent[0] < RECENT:
            others = recent[1]
        else:  # none recent: the processes runnable right now, then a measurement within INTERVAL
            others = _runnable_others()
        self._others = others
        self._set(self._target(others))
        self._next = time.monotonic() + self.interval
        return self

    def tick(self) -> None:
        """Re-measure the load every ``interval`` seconds and follow it."""
        if self.sampler is None:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval
        others = self.sampler.others()
        if others is None:
            return
        # the load that lasted: a thread is taken only when this and the previous reading agree
        sustained = others if self._others is None else min(others, self._others)
        self._others = others
        global _last_load
        _last_load = (now, sustained)
        self._set(self._target(sustained))

    def __exit__(self, *exc) -> None:
        if self._previous and self.current and self._previous != self.current:
            import torch

            torch.set_num_threads(self._previous)
