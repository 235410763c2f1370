"""NN-descent under the blended metric, compiled once and cached on disk.

The approximate k-nearest-neighbour search of :mod:`.graph` above ``EXACT_SEARCH_MAX`` cells:
NN-descent (Dong, Charikar & Li 2011) started from a random-projection forest, the algorithm of
pynndescent, specialised to the one metric the graph needs::

    d(u, v) = ||u_x - v_x|| (+ ||u_s - v_s||) + |u_r - v_r|

on rows ``[a*x_1 .. a*x_p, (c*s_x, c*s_y,) b*r]`` (expression, optional position, rank; the
weights are already in the data).

Why not pynndescent itself: its NN-descent (``nn_descent``, ``process_candidates``,
``init_rp_tree``, ...) takes the metric as an argument and is compiled without numba's cache,
for a custom metric and for its built-in ones alike, so every new process paid its compilation
(~20 s on an idle 2-core machine, over a minute of wall time on a busy one: more than the search
itself up to a few 10^5 cells) before computing anything.  Every function here is a
module-level ``numba.njit(cache=True)`` with the metric written in, so numba compiles them once
per machine and package version (~25 s of CPU) and later processes load them (~1 s) from the cache
(``__pycache__`` next to this file, or numba's per-user cache directory when the package is
installed read-only, or ``NUMBA_CACHE_DIR``).

The local join (where the time goes) runs in blocks of rows: the candidate pairs of a block are
compared in parallel (numba threads, ``n_jobs``), then each thread updates the heaps of the
rows it owns, in a fixed order -- so the neighbours are the same for any number of threads, and
for a given seed.  Measured against pynndescent 0.7 on 50 000 clustered cells x 50 dims (k = 30):
the same CPU time once compiled, and 99.7 % of the 15-neighbour sets in common (mean 15th
distance equal to 1e-5); 99.96 % recall of the exact 15 neighbours at 20 000 cells.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["nn_descent"]


def _jit(**options):
    """``numba.njit(cache=True)``, or without the cache where numba finds no writable place for it."""

    def wrap(fn):
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(**options)(fn)

    return wrap


@_jit(fastmath=True, inline="always")
def _dist(Z, i, j, n_expr, n_space):
    e = np.float32(0.0)
    for t in range(n_expr):
        d = Z[i, t] - Z[j, t]
        e += d * d
    out = np.sqrt(e)
    if n_space > 0:
        s = np.float32(0.0)
        for t in range(n_expr, n_expr + n_space):
            d = Z[i, t] - Z[j, t]
            s += d * d
        out += np.sqrt(s)
    last = Z.shape[1] - 1
    return out + abs(Z[i, last] - Z[j, last])


@_jit(inline="always")
def _push(ind, dst, flg, p, q, d):
    """Insert q (new) at distance d into p's max-heap unless it is there or too far; 1 if inserted."""
    if d >= dst[p, 0]:
        return 0
    k = ind.shape[1]
    for j in range(k):
        if ind[p, j] == q:
            return 0
    i = 0
    while True:
        left = 2 * i + 1
        if left >= k:
            break
        right = left + 1
        c = left if (right >= k or dst[p, left] >= dst[p, right]) else right
        if dst[p, c] > d:
            ind[p, i] = ind[p, c]
            dst[p, i] = dst[p, c]
            flg[p, i] = flg[p, c]
            i = c
        else:
            break
    ind[p, i] = q
    dst[p, i] = d
    flg[p, i] = 1
    return 1


@_jit(inline="always")
def _cand_push(ind, pri, p, q, w):
    """Keep q in p's candidate list if its random priority w is among the lowest."""
    if w >= pri[p, 0]:
        return
    k = ind.shape[1]
    for j in range(k):
        if ind[p, j] == q:
            return
    i = 0
    while True:
        left = 2 * i + 1
        if left >= k:
            break
        right = left + 1
        c = left if (right >= k or pri[p, left] >= pri[p, right]) else right
        if pri[p, c] > w:
            ind[p, i] = ind[p, c]
            pri[p, i] = pri[p, c]
            i = c
        else:
            break
    ind[p, i] = q
    pri[p, i] = w


@_jit(fastmath=True)
def _forest(Z, n_expr, n_space, ind, dst, flg, n_trees, leaf_size):
    """Random-projection trees (hyperplane halfway between two random rows); all pairs within each leaf."""
    n, dim = Z.shape
    perm = np.arange(n)
    stack_lo = np.empty(n + 1, dtype=np.int64)
    stack_hi = np.empty(n + 1, dtype=np.int64)
    normal = np.empty(dim, dtype=np.float32)
    for _tree in range(n_trees):
        stack_lo[0] = 0
        stack_hi[0] = n
        top = 1
        while top > 0:
            top -= 1
            lo = stack_lo[top]
            hi = stack_hi[top]
            size = hi - lo
            if size <= leaf_size:
                for a in range(lo, hi):
                    p = perm[a]
                    for b in range(a + 1, hi):
                        q = perm[b]
                        d = _dist(Z, p, q, n_expr, n_space)
                        if d < dst[p, 0]:
                            _push(ind, dst, flg, p, q, d)
                        if d < dst[q, 0]:
                            _push(ind, dst, flg, q, p, d)
                continue
            l_ = perm[lo + np.random.randint(size)]
            r_ = perm[lo + np.random.randint(size)]
            offset = np.float32(0.0)
            for t in range(dim):
                normal[t] = Z[l_, t] - Z[r_, t]
                offset -= normal[t] * (Z[l_, t] + Z[r_, t]) * np.float32(0.5)
            i = lo
            j = hi - 1
            while i <= j:
                m = offset
                row = perm[i]
                for t in range(dim):
                    m += normal[t] * Z[row, t]
                left = m > 0 if abs(m) > 1e-8 else np.random.random() < 0.5
                if left:
                    i += 1
                else:
                    perm[i] = perm[j]
                    perm[j] = row
                    j -= 1
            if i == lo or i == hi:  # every row on one side (duplicates): split in the middle
                i = lo + size // 2
            stack_lo[top] = lo
            stack_hi[top] = i
            stack_lo[top + 1] = i
            stack_hi[top + 1] = hi
            top += 2


@_jit(fastmath=True)
def _fill_random(Z, n_expr, n_space, ind, dst, flg):
    """Rows the forest left short of k neighbours get random ones."""
    n, k = ind.shape
    for p in range(n):
        tries = 0
        while ind[p, 0] < 0 and tries < 4 * k:
            q = np.random.randint(n)
            tries += 1
            if q != p:
                _push(ind, dst, flg, p, q, _dist(Z, p, q, n_expr, n_space))


@_jit()
def _candidates(ind, flg, new, new_pri, old, old_pri):
    """Sample up to max_candidates new and old neighbours of every row, forward and reverse.

    Old candidates only matter beside new ones (old pairs were compared before): rows without a
    new candidate get none, which spares most of the work once few neighbours still change.
    """
    n, k = ind.shape
    new[:] = -1
    old[:] = -1
    new_pri[:] = np.inf
    old_pri[:] = np.inf
    weight = np.empty((n, k), dtype=np.float32)
    has_new = np.zeros(n, dtype=np.bool_)
    for p in range(n):
        for j in range(k):
            q = ind[p, j]
            w = np.float32(np.random.random())
            weight[p, j] = w
            if q >= 0 and flg[p, j]:
                _cand_push(new, new_pri, p, q, w)
                _cand_push(new, new_pri, q, p, w)
                has_new[p] = True
                has_new[q] = True
    for p in range(n):
        for j in range(k):
            q = ind[p, j]
            if q >= 0 and not flg[p, j]:
                if has_new[p]:
                    _cand_push(old, old_pri, p, q, weight[p, j])
                if has_new[q]:
                    _cand_push(old, old_pri, q, p, weight[p, j])
    m = new.shape[1]
    for p in range(n):
        for j in range(k):
            if flg[p, j]:
                q = ind[p, j]
                for c in range(m):
                    if new[p, c] == q:
                        flg[p, j] = 0  # sampled: joined in this iteration, old from now on
                        break


@_jit(fastmath=True)
def _local_join(Z, n_expr, n_space, ind, dst, flg, new, old):
    """Compare new candidates with each other and with the old ones; number of heap changes."""
    n = ind.shape[0]
    m = new.shape[1]
    changes = 0
    for i in range(n):
        for a in range(m):
            p = new[i, a]
            if p < 0:
                continue
            for b in range(a + 1, m):
                q = new[i, b]
                if q < 0:
                    continue
                d = _dist(Z, p, q, n_expr, n_space)
                if d < dst[p, 0]:
                    changes += _push(ind, dst, flg, p, q, d)
                if d < dst[q, 0]:
                    changes += _push(ind, dst, flg, q, p, d)
            for b in range(m):
                q = old[i, b]
                if q < 0 or q == p:
                    continue
                d = _dist(Z, p, q, n_expr, n_space)
                if d < dst[p, 0]:
                    changes += _push(ind, dst, flg, p, q, d)
                if d < dst[q, 0]:
                    changes += _push(ind, dst, flg, q, p, d)
    return changes


@_jit(fastmath=True, parallel=True)
def _join_pairs(Z, n_expr, n_space, dst, new, old, lo, hi, up_p, up_q, up_d, counts):
    """Parallel over rows lo..hi: the candidate pairs that may improve a heap, in a fixed order."""
    m = new.shape[1]
    for r in numba.prange(hi - lo):
        i = lo + r
        c = 0
        for a in range(m):
            p = new[i, a]
            if p < 0:
                continue
            for b in range(a + 1, 2 * m):
                q = new[i, b] if b < m else old[i, b - m]
                if q < 0 or q == p:
                    continue
                d = _dist(Z, p, q, n_expr, n_space)
                if d < dst[p, 0] or d < dst[q, 0]:
                    up_p[r, c] = p
                    up_q[r, c] = q
                    up_d[r, c] = d
                    c += 1
        counts[r] = c


@_jit(parallel=True)
def _apply_pairs(ind, dst, flg, up_p, up_q, up_d, counts, n_rows, n_owners):
    """Parallel over owners: owner t alone pushes into the heaps of rows p with p % n_owners == t."""
    changes = np.zeros(n_owners, dtype=np.int64)
    for t in numba.prange(n_owners):
        c = 0
        for r in range(n_rows):
            for u in range(counts[r]):
                p = up_p[r, u]
                q = up_q[r, u]
                d = up_d[r, u]
                if p % n_owners == t and d < dst[p, 0]:
                    c += _push(ind, dst, flg, p, q, d)
                if q % n_owners == t and d < dst[q, 0]:
                    c += _push(ind, dst, flg, q, p, d)
        changes[t] = c
    return changes.sum()


@_jit()
def _local_join_blocked(Z, n_expr, n_space, ind, dst, flg, new, old, block, n_owners):
    """The local join in blocks of rows: pairs computed in parallel, heaps updated by owner.

    The pairs of a block are filtered against the heaps as they were when the block began, and
    applied in the same order whatever the number of threads: the result does not depend on it.
    """
    n = ind.shape[0]
    m = new.shape[1]
    width = m * (m - 1) // 2 + m * m
    up_p = np.empty((block, width), dtype=np.int32)
    up_q = np.empty((block, width), dtype=np.int32)
    up_d = np.empty((block, width), dtype=np.float32)
    counts = np.zeros(block, dtype=np.int64)
    changes = 0
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        _join_pairs(Z, n_expr, n_space, dst, new, old, lo, hi, up_p, up_q, up_d, counts)
        changes += _apply_pairs(ind, dst, flg, up_p, up_q, up_d, counts, hi - lo, n_owners)
    return changes


@_jit()
def _sort_rows(ind, dst):
    n = ind.shape[0]
    out_i = np.empty(ind.shape, dtype=np.int64)
    out_d = np.empty(dst.shape, dtype=np.float32)
    for p in range(n):
        order = np.argsort(dst[p], kind="mergesort")
        for j in range(order.size):
            out_i[p, j] = ind[p, order[j]]
            out_d[p, j] = dst[p, order[j]]
    return out_i, out_d


@_jit()
def _nn_descent(Z, n_expr, n_space, k, seed, n_trees, leaf_size, max_candidates, n_iters, delta, block, n_owners):
    np.random.seed(seed)
    n = Z.shape[0]
    ind = np.full((n, k), -1, dtype=np.int32)
    dst = np.full((n, k), np.inf, dtype=np.float32)
    flg = np.zeros((n, k), dtype=np.uint8)
    _forest(Z, n_expr, n_space, ind, dst, flg, n_trees, leaf_size)
    _fill_random(Z, n_expr, n_space, ind, dst, flg)
    new = np.empty((n, max_candidates), dtype=np.int32)
    old = np.empty((n, max_candidates), dtype=np.int32)
    new_pri = np.empty((n, max_candidates), dtype=np.float32)
    old_pri = np.empty((n, max_candidates), dtype=np.float32)
    iterations = 0
    for _ in range(n_iters):
        iterations += 1
        _candidates(ind, flg, new, new_pri, old, old_pri)
        if block > 0:
            changes = _local_join_blocked(Z, n_expr, n_space, ind, dst, flg, new, old, block, n_owners)
        else:
            changes = _local_join(Z, n_expr, n_space, ind, dst, flg, new, old)
        if changes <= delta * k * n:
            break
    out_i, out_d = _sort_rows(ind, dst)
    return out_i, out_d, iterations


def nn_descent(Z: np.ndarray, k: int, n_expr: int, n_space: int, seed: int = 0, *, n_jobs: int = -1,
               n_trees: int | None = None, leaf_size: int | None = None, max_candidates: int | None = None,
               n_iters: int | None = None, delta: float = 0.001, block: int = 2048):
    """Approximate ``k`` nearest neighbours (self excluded) of every row of ``Z`` under the blended metric.

    Returns ``(indices int64 (n, k), distances float32 (n, k))``, each row ascending.  Trees,
    candidates and iterations default as in pynndescent: ``max(3, min(12, round(2 log10 n)))``
    trees (leaves of ``max(k + 1, 30)`` rows), ``min(60, k)`` candidates, ``max(5, round(log2 n))``
    iterations at most, stopping when fewer than ``delta * k * n`` heap entries change.
    ``n_jobs`` threads (-1: numba's default, all cores) share the local join; the result is the
    same for any number of threads.  ``block=0`` runs the join serially, updating in place.
    """
    Z = np.ascontiguousarray(Z, dtype=np.float32)
    n = Z.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, n - 1], got {k}")
    n_trees = n_trees if n_trees is not None else max(3, min(12, int(round(2.0 * np.log10(n)))))
    leaf_size = leaf_size if leaf_size is not None else max(k + 1, 30)
    max_candidates = max_candidates if max_candidates is not None else min(60, k)
    n_iters = n_iters if n_iters is not None else max(5, int(round(np.log2(n))))
    before = numba.get_num_threads()
    threads = before if n_jobs is None or n_jobs < 1 else min(int(n_jobs), numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(threads)
    try:
        idx, dist, _ = _nn_descent(Z, int(n_expr), int(n_space), int(k), int(seed) % (2**32), int(n_trees),
                                   int(leaf_size), int(max_candidates), int(n_iters), float(delta),
                                   int(block), threads)
    finally:
        numba.set_num_threads(before)
    return idx, dist
