"""torch's thread count follows the load and the workload, and a user's choice wins."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch

from napari_annotatability import core
from napari_annotatability.core import _threads
from napari_annotatability.core._threads import PARALLEL_MIN_FLOPS, ThreadGovernor, requested_threads, step_flops
from napari_annotatability.core.errors import AnnotatabilityInputError
from napari_annotatability.core.synthetic import make_synthetic

BIG = 10 * PARALLEL_MIN_FLOPS
REAL_AVAILABLE_CPUS = _threads.available_cpus  # before the fixture replaces it
REAL_RUNNABLE_OTHERS = _threads._runnable_others


@pytest.fixture(autouse=True)
def _no_user_choice(monkeypatch):
    """These tests decide the policy themselves: clear the variables a test run may set."""
    for var in (_threads.ENV_VAR, *_threads.TORCH_ENV_VARS):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_threads, "_last_load", None)
    monkeypatch.setattr(_threads, "available_cpus", lambda: 2)
    monkeypatch.setattr(_threads, "_runnable_others", lambda: 0.0)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


class FakeSampler:
    """Stands in for /proc/stat: other processes use ``load`` CPU-seconds per second."""

    works = True

    def __init__(self, load: float) -> None:
        self.load = load

    def others(self) -> float:
        return self.load


def _governed(monkeypatch, flops: float, load: float | None, interval: float = 0.0) -> ThreadGovernor:
    if load is not None:
        monkeypatch.setattr(_threads, "_CpuSampler", lambda: FakeSampler(load))
    return ThreadGovernor(flops, interval=interval)


def test_step_flops_counts_every_layer():
    assert step_flops([100, 50, 10], 256) == 3 * 256 * (100 * 50 + 50 * 10)


def test_small_networks_get_one_thread_whatever_the_load(monkeypatch):
    with _governed(monkeypatch, PARALLEL_MIN_FLOPS / 2, load=0.0) as gov:
        gov.tick()
        assert torch.get_num_threads() == 1


def test_a_busy_core_elsewhere_takes_a_thread_and_an_idle_machine_gives_it_back(monkeypatch):
    sampler = FakeSampler(0.0)
    monkeypatch.setattr(_threads, "_CpuSampler", lambda: sampler)
    with ThreadGovernor(BIG, interval=0.0) as gov:
        assert torch.get_num_threads() == 2  # nothing else runnable: both cores
        sampler.load = 1.0
        gov.tick()
        assert torch.get_num_threads() == 2  # one reading could be a process passing through
        gov.tick()
        assert torch.get_num_threads() == 1  # two in a row: one core busy elsewhere, its fair share
        sampler.load = 3.0
        gov.tick()
        assert torch.get_num_threads() == 1  # never below one
        sampler.load = 0.1
        gov.tick()
        assert torch.get_num_threads() == 2
    assert gov.history == [2, 1, 2]
    sampler.load = 1.0
    with ThreadGovernor(BIG, interval=0.0):  # a recent measurement is reused, not taken again
        assert torch.get_num_threads() == 2
    _threads._last_load = None
    monkeypatch.setattr(_threads, "_runnable_others", lambda: 1.0)
    with ThreadGovernor(BIG, interval=0.0):  # none recent: another process runnable now
        assert torch.get_num_threads() == 1


def test_a_passing_spike_takes_no_thread_and_a_busy_start_needs_no_second_reading(monkeypatch):
    sampler = FakeSampler(0.0)
    monkeypatch.setattr(_threads, "_CpuSampler", lambda: sampler)
    with ThreadGovernor(BIG, interval=0.0) as gov:
        for load in (0.0, 1.2, 0.0, 0.9, 0.1, 1.0, 0.0):  # spikes of one reading each
            sampler.load = load
            gov.tick()
            assert torch.get_num_threads() == 2
    assert gov.history == [2]
    assert _threads._last_load[1] < 0.3  # the next training does not start from a spike either
    _threads._last_load = None
    monkeypatch.setattr(_threads, "_runnable_others", lambda: 1.0)
    sampler.load = 1.0
    with ThreadGovernor(BIG, interval=0.0) as gov:  # busy at the start and at the first reading
        assert torch.get_num_threads() == 1
        gov.tick()
        assert torch.get_num_threads() == 1
        sampler.load = 0.0
        gov.tick()
        assert torch.get_num_threads() == 2  # the core is free again: given back at once


def test_the_previous_count_is_restored(monkeypatch):
    torch.set_num_threads(2)
    with _governed(monkeypatch, PARALLEL_MIN_FLOPS / 2, load=0.0):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_a_worker_thread_leaves_a_core_to_the_main_thread(monkeypatch):
    seen = []

    def work():
        with _governed(monkeypatch, BIG, load=0.0) as gov:
            gov.tick()
            seen.append((gov.reserve, torch.get_num_threads()))

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen == [(1, 1)]


def test_the_users_choice_wins(monkeypatch):
    with requested_threads(2), _governed(monkeypatch, PARALLEL_MIN_FLOPS / 2, load=5.0) as gov:
        gov.tick()
        assert torch.get_num_threads() == 2
    monkeypatch.setenv(_threads.ENV_VAR, "1")
    with _governed(monkeypatch, BIG, load=0.0) as gov:
        gov.tick()
        assert torch.get_num_threads() == 1
    monkeypatch.delenv(_threads.ENV_VAR)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # torch's own variable: respected as it is
    with _governed(monkeypatch, PARALLEL_MIN_FLOPS / 2, load=5.0) as gov:
        gov.tick()
        assert torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, "two", True])
def test_a_bad_thread_count_is_refused_by_name(bad):
    with pytest.raises(AnnotatabilityInputError, match="threads"):
        with requested_threads(bad):
            pass


def test_a_bad_environment_value_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(_threads.ENV_VAR, "lots")
    with pytest.raises(AnnotatabilityInputError, match=_threads.ENV_VAR):
        _threads.user_threads()


def test_scores_do_not_depend_on_the_thread_count():
    adata = make_synthetic(600, 300, n_classes=4, seed=1)
    conf = []
    for n in (1, 2):
        a = adata.copy()
        core.training_dynamics(a, "label", epochs=6, seed=3, threads=n)
        conf.append(a.obs["annot_confidence"].to_numpy())
    np.testing.assert_array_equal(conf[0], conf[1])


def test_available_cpus_follows_the_affinity_mask():
    n = REAL_AVAILABLE_CPUS()
    assert 1 <= n <= len(os.sched_getaffinity(0))


def test_cli_threads_option_reaches_the_governor(monkeypatch):
    from napari_annotatability import cli

    assert cli.THREADS_ENV_VAR == _threads.ENV_VAR
    monkeypatch.setenv("NUMBA_NUM_THREADS", "2")  # restored by monkeypatch; --threads sets it only when unset
    cli._fix_threads(1)
    try:
        assert _threads.user_threads() == 1
    finally:
        os.environ.pop(_threads.ENV_VAR, None)
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["score", "x.h5ad", "--label", "l", "--out", "y.h5ad", "--threads", "0"])


def test_the_start_reads_the_run_queue_a_few_times_and_keeps_the_least(monkeypatch):
    """One reading of /proc/loadavg races with our own threads and catches passing processes; a
    busy process is runnable in every reading."""
    readings = iter([1.0, 2.0, 0.0, 1.0])
    monkeypatch.setattr(_threads, "_runnable_once", lambda: next(readings))
    assert REAL_RUNNABLE_OTHERS(samples=4, gap=0.0) == 0.0  # something passed through: idle
    monkeypatch.setattr(_threads, "_runnable_once", lambda: 1.0)
    assert REAL_RUNNABLE_OTHERS(samples=4, gap=0.0) == 1.0  # busy in every reading: busy
    monkeypatch.setattr(_threads, "_runnable_once", lambda: None)
    assert REAL_RUNNABLE_OTHERS(samples=4, gap=0.0) == 1.0  # unreadable: assume a busy core
