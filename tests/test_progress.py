"""Console progress: one display per stage, closed when the stage ends; a few plain lines in a log."""

from __future__ import annotations

import io
import re

import pytest

from napari_annotatability import core
from napari_annotatability.core._engine import EpochProgress
from napari_annotatability.core._progress import StageProgress, tqdm_callback

LINE = re.compile(r"^(?P<stage>[\w -]+): (?P<pct>\d+) % \((?P<epoch>\d+)/(?P<total>\d+) epochs(, loss \d+\.\d{3})?, "
                  r"\d+\.\d s\)$")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _epochs(stage: str, total: int, start: int = 1, loss: float = 0.5):
    for e in range(start, total + 1):
        yield EpochProgress(epoch=e, n_epochs=total, loss=loss, confidence=None, seconds=0.0, stage=stage)


def _stages(text: str) -> dict[str, list[re.Match]]:
    """The log's lines by stage, each checked against the documented format."""
    out: dict[str, list[re.Match]] = {}
    for line in text.splitlines():
        m = LINE.match(line)
        assert m, f"unexpected progress line: {line!r}"
        out.setdefault(m["stage"], []).append(m)
    return out


def test_a_log_gets_a_line_per_tenth_of_each_stage():
    log = io.StringIO()
    with StageProgress(file=log) as show:
        assert not show.interactive
        for stage, total in (("training", 1000), ("cross-fitting", 5000), ("calibrating", 1000)):
            for p in _epochs(stage, total):
                show(p)
    text = log.getvalue()
    assert "\r" not in text and len(text.encode()) < 2000  # a tqdm bar wrote ~390 KB here
    stages = _stages(text)
    assert list(stages) == ["training", "cross-fitting", "calibrating"]
    for lines in stages.values():
        assert [int(m["pct"]) for m in lines] == list(range(10, 101, 10))
        assert lines[-1]["epoch"] == lines[-1]["total"]


def test_short_stages_and_nan_losses_in_a_log():
    log = io.StringIO()
    with StageProgress(file=log) as show:
        for p in _epochs("correcting", 3, loss=float("nan")):
            show(p)
    lines = log.getvalue().splitlines()
    assert lines[-1].startswith("correcting: 100 % (3/3 epochs, ") and "loss" not in log.getvalue()
    assert len(lines) == 3


def test_a_restarted_stage_still_ends_at_100_percent():
    log = io.StringIO()
    with StageProgress(file=log) as show:
        for p in _epochs("training", 100):
            if p.epoch == 45:  # diverged: the engine starts the run again from epoch 1
                for q in _epochs("training", 100):
                    show(q)
                break
            show(p)
    pcts = [int(m["pct"]) for m in _stages(log.getvalue())["training"]]
    assert pcts[-1] == 100 and len(pcts) <= 15


def test_a_terminal_gets_one_bar_per_stage_closed_when_it_ends():
    term = _Terminal()
    show = StageProgress(file=term)
    assert show.interactive
    for p in _epochs("training", 50):
        show(p)
        assert (show._bar is None) == (p.epoch == 50)  # closed at the stage's last epoch
    for p in _epochs("cross-fitting", 40):
        if p.epoch > 20:  # a stage that stops early is closed when the next one starts
            break
        show(p)
    bar = show._bar
    show(next(_epochs("calibrating", 10)))
    assert bar.disable  # tqdm marks a closed bar disabled
    show.close()
    assert show._bar is None
    screen = [line.rsplit("\r", 1)[-1] for line in term.getvalue().split("\n") if line.strip()]
    assert [line.split(":")[0] for line in screen] == ["training", "cross-fitting", "calibrating"]
    assert "50/50" in screen[0] and "20/40" in screen[1]


def test_disabled_progress_is_silent():
    with tqdm_callback(10, "training", enabled=False) as cb:
        assert cb is None


@pytest.fixture
def tiny():
    return core.make_synthetic(300, 20, 3, seed=0)


def test_score_logs_a_handful_of_lines_per_stage(tiny, capfd):
    core.score(tiny, "label", epochs=20, seed=0, genes=False, progress=True)
    out, err = capfd.readouterr()
    assert out == ""
    stages = _stages(err)  # stderr is captured: not a terminal
    assert list(stages) == ["training", "cross-fitting", "calibrating"]
    for lines in stages.values():
        assert len(lines) <= 10 and int(lines[-1]["pct"]) == 100
    assert len(err.encode()) < 2000


def test_score_without_progress_writes_nothing(tiny, capfd):
    core.score(tiny, "label", epochs=5, seed=0, genes=False, progress=False)
    assert capfd.readouterr() == ("", "")


def test_single_trainings_log_under_their_own_name(tiny, capfd):
    core.training_dynamics(tiny, "label", epochs=20, seed=0, progress=True)
    lines = _stages(capfd.readouterr().err)["training"]
    assert len(lines) == 10 and lines[-1]["epoch"] == "20"
