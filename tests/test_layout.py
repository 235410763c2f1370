"""At 1280 x 800 and 1920 x 1080, with every Inspect dock open: the window fits, the canvas keeps half
of it, no text is cut off and no control is drawn over another (docs/screenshots_layout.py).

Each size runs in a process of its own on a virtual screen of that size (``xvfb-run``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("napari")

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "screenshots_layout.py"


@pytest.mark.skipif(shutil.which("xvfb-run") is None,
                    reason="needs xvfb-run for a virtual screen of a given size: apt-get install xvfb xauth")
@pytest.mark.slow
@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_all_inspect_docks_fit_the_screen(size, tmp_path):
    w, h = size
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = subprocess.run(["xvfb-run", "-a", "-s", f"-screen 0 {w}x{h}x24", sys.executable, str(SCRIPT), str(w),
                           str(h), "--out", str(tmp_path)], env=env, capture_output=True, text=True, timeout=900)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "PROBLEM" not in proc.stdout and (tmp_path / f"layout-{w}x{h}.png").exists()
    line = next(x for x in proc.stdout.splitlines() if x.startswith("screen"))
    assert f"window {w} x {h}" in line
