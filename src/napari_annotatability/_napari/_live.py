"""Live recolouring during a training, throttled so that large sections keep the viewer responsive.

Every training epoch yields the cells' current confidence; :class:`LiveRecolour` shows it on every
layer of cells of the AnnData being trained (spots recolour through ``layer.features``, a mask
through its colour lookup table), at most once per ``live_interval`` seconds.
"""

from __future__ import annotations

import time

from qtpy.QtCore import QTimer

from ..core import keys

__all__ = ["LIVE_SPOTS_PER_SECOND", "LIVE_DUTY", "DRAW_PROBE_S", "live_interval", "LiveRecolour"]

#: live recolouring during training: at most once per (spots / LIVE_SPOTS_PER_SECOND) seconds, and
#: at most LIVE_DUTY of the time (measured), so that large sections keep the viewer responsive.
#: Every draw of 10^5 spots costs ~0.4 s under software OpenGL (benchmarks/bench_viewer.py).
LIVE_SPOTS_PER_SECOND = 100_000
LIVE_DUTY = 0.25
#: delay of the timer that finds out when the redraw after a live recolour has finished
DRAW_PROBE_S = 0.04


def live_interval(n_spots: int, last_cost: float = 0.0) -> float:
    """Seconds to wait between two live recolours of a layer of ``n_spots``."""
    return max(n_spots / LIVE_SPOTS_PER_SECOND if n_spots > 20_000 else 0.0, last_cost / LIVE_DUTY)


class LiveRecolour:
    """Recolour ``cells`` (the layers of one AnnData) by the live scores of a training.

    ``count`` is how many epochs recoloured them, ``costs`` the seconds each took, redraw included
    (the benchmarks read both).
    """

    def __init__(self, cells, key: str = keys.CONFIDENCE, on_first=None) -> None:
        self.cells = list(cells)
        self.key = key
        self._on_first = on_first  # e.g. show the live colouring's titled colorbar
        self.count = 0
        self.costs: list[float] = []
        self._at = float("-inf")
        self._cost = 0.0
        self._first = True

    def update(self, values) -> bool:
        """Show ``values`` (one per obs row) unless it is too soon; True if the layers were recoloured."""
        cells = [c for c in self.cells if c.is_open()]
        if not cells:
            return False
        start = time.perf_counter()
        if not self._first and start - self._at < live_interval(sum(c.n for c in cells), self._cost):
            return False  # a large section: skip this epoch's recolour, keep the viewer responsive
        for cell in cells:
            cell.live_update(self.key, values)
        self.count += 1
        if self._first:
            # the first colouring sets up the colormap and colorbar: a one-off cost that must not
            # throttle the recolours after it (a 1 s training would show only this one)
            self._first = False
            if self._on_first is not None:
                self._on_first()
            return True
        self._at = time.perf_counter()
        self._cost = self._at - start
        # the redraw comes after, on Qt's update timer (5-16 ms): a later timer fires once it ran
        QTimer.singleShot(int(DRAW_PROBE_S * 1000), lambda: self._measured_draw(start))
        return True

    def _measured_draw(self, start: float) -> None:
        self._at = time.perf_counter()
        self._cost = max(self._cost, self._at - start - DRAW_PROBE_S)  # recolour + redraw
        self.costs.append(self._cost)
