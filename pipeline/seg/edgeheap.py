"""A binary min-heap of (score, edge) entries for compiled (numba) loops: two parallel arrays
(float64 scores, int64 edge indices) and a size, ordered by score and then by edge index, the
order of Python's ``heapq`` on ``(score, edge)`` tuples. Callers keep the size and rebind the
arrays that :func:`push` returns (it doubles them when full)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def _less(s1, e1, s2, e2):
    return s1 < s2 or (s1 == s2 and e1 < e2)


@numba.njit(cache=True, nogil=True)
def _sift_down(score, edge, size, i):
    s, e = score[i], edge[i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and _less(score[c + 1], edge[c + 1], score[c], edge[c]):
            c += 1
        if not _less(score[c], edge[c], s, e):
            break
        score[i], edge[i] = score[c], edge[c]
        i = c
    score[i], edge[i] = s, e


@numba.njit(cache=True, nogil=True)
def heapify(score, edge, size):
    """Order the first ``size`` entries into a heap, in place."""
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(score, edge, size, i)


@numba.njit(cache=True, nogil=True)
def pop(score, edge, size):
    """The smallest entry (score, edge); the heap then holds ``size - 1`` entries."""
    s, e = score[0], edge[0]
    size -= 1
    if size > 0:
        score[0], edge[0] = score[size], edge[size]
        _sift_down(score, edge, size, 0)
    return s, e


@numba.njit(cache=True, nogil=True)
def push(score, edge, size, s, e):
    """Add (s, e) to a heap of ``size`` entries; returns the (possibly grown) arrays, which then
    hold ``size + 1`` entries."""
    if size == score.size:
        grown_s = np.empty(2 * score.size + 1, np.float64)
        grown_e = np.empty(2 * score.size + 1, np.int64)
        grown_s[:size] = score[:size]
        grown_e[:size] = edge[:size]
        score, edge = grown_s, grown_e
    i = size
    while i > 0:
        p = (i - 1) // 2
        if not _less(s, e, score[p], edge[p]):
            break
        score[i], edge[i] = score[p], edge[p]
        i = p
    score[i], edge[i] = s, e
    return score, edge
