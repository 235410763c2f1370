"""The README's job ten times in a row by clicks, on napari's own event loop (scripts/demo_soak.py):
train, inspect, curate, retrain, export, each run.

A separate process: an abort (a Qt fatal error, SIGABRT) fails this test instead of the session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("napari")

from conftest import needs_display  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "demo_soak.py"


@needs_display
@pytest.mark.slow
def test_the_readme_job_ten_times_by_clicks_under_napari_run_without_a_traceback():
    env = dict(os.environ, QT_API=os.environ.get("QT_API", "pyqt6"))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--runs", "10"], env=env, capture_output=True, text=True,
                          timeout=2400)
    out = proc.stdout + proc.stderr
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, out[-5000:]
    assert "10 of 10 runs of the README job" in proc.stdout and "0 exception(s)" in proc.stdout
    for bad in ("Traceback", "RecursionError", "Aborted"):
        assert bad not in out, out[-5000:]
