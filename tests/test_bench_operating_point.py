"""The operating-point table of benchmarks/bench_label_quality.py: the best possible cut-off's rates.

docs/method.md quotes it to say which category targets *any* cut-off could meet; these are the
rates on scores whose answer is known by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_label_quality import _rates  # noqa: E402


def test_separated_scores_need_no_clean_cell_and_find_every_flipped_one():
    flipped = np.r_[np.ones(10, bool), np.zeros(90, bool)]
    score = np.r_[np.linspace(0, 0.1, 10), np.linspace(0.5, 1, 90)]  # flipped cells lowest
    assert _rates(flipped, score) == (0.0, 1.0)


def test_interleaved_scores_give_the_shares_counted_by_hand():
    # 10 flipped at 0..9, 100 clean at 0.5, 1.5, ..., 99.5: 70 % of the flipped (7) sit at or below 6,
    # which takes the 6 clean cells 0.5..5.5; 8 clean cells allowed: below 8.5, the flipped 0..8 (9)
    flipped = np.r_[np.ones(10, bool), np.zeros(100, bool)]
    score = np.r_[np.arange(10.0), np.arange(100.0) + 0.5]
    others, found = _rates(flipped, score)
    assert others == 0.06 and found == 0.9


def test_a_non_finite_score_counts_as_the_most_suspicious():
    flipped = np.r_[np.ones(10, bool), np.zeros(10, bool)]
    score = np.r_[np.full(10, np.nan), np.arange(10.0)]
    assert _rates(flipped, score) == (0.0, 1.0)
