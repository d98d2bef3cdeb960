"""An indexed 4-ary min-heap of edges for compiled (numba) loops: every live edge has exactly one
entry, keyed by (score, edge index) (the order of Python's ``heapq`` on ``(score, edge)``
tuples), and ``pos[e]`` says where it is, so an edge's score is changed and a dead edge removed
in place instead of leaving stale entries to pop. Entries are 16-byte rows (score, edge as a
float; indices below 2**53 are exact), so a node's four children share one cache line."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def _less(s1, e1, s2, e2):
    return s1 < s2 or (s1 == s2 and e1 < e2)


@numba.njit(cache=True, nogil=True, inline="always")
def _place(heap, pos, i, s, e):
    heap[i, 0], heap[i, 1] = s, e
    pos[np.int64(e)] = i


@numba.njit(cache=True, nogil=True, inline="always")
def _sift_down(heap, pos, size, i):
    s, e = heap[i, 0], heap[i, 1]
    while True:
        first = 4 * i + 1
        if first >= size:
            break
        c = first
        for k in range(first + 1, min(first + 4, size)):
            if _less(heap[k, 0], heap[k, 1], heap[c, 0], heap[c, 1]):
                c = k
        if not _less(heap[c, 0], heap[c, 1], s, e):
            break
        _place(heap, pos, i, heap[c, 0], heap[c, 1])
        i = c
    _place(heap, pos, i, s, e)


@numba.njit(cache=True, nogil=True, inline="always")
def _sift_up(heap, pos, i):
    s, e = heap[i, 0], heap[i, 1]
    while i > 0:
        p = (i - 1) // 4
        if not _less(s, e, heap[p, 0], heap[p, 1]):
            break
        _place(heap, pos, i, heap[p, 0], heap[p, 1])
        i = p
    _place(heap, pos, i, s, e)


@numba.njit(cache=True, nogil=True, inline="always")
def new_heap(score):
    """The heap of every edge e at score[e], and the positions of the edges in it."""
    n = score.size
    buf = np.empty((n + 4, 2), np.float64)
    start = (-(buf.ctypes.data + 16) % 64) // 16  # the 4 children of an entry: one cache line
    heap = buf[start : start + n]
    heap[:, 0] = score
    heap[:, 1] = np.arange(n)
    pos = np.arange(n).astype(np.int32)
    for i in range((n - 2) // 4, -1, -1):
        _sift_down(heap, pos, n, i)
    return heap, pos


@numba.njit(cache=True, nogil=True, inline="always")
def remove(heap, pos, size, e):
    """Take edge ``e`` out of a heap of ``size`` entries (it then holds ``size - 1``)."""
    i = pos[e]
    pos[e] = -1
    last = size - 1
    if i == last:
        return
    _place(heap, pos, i, heap[last, 0], heap[last, 1])
    if i > 0 and _less(heap[i, 0], heap[i, 1], heap[(i - 1) // 4, 0], heap[(i - 1) // 4, 1]):
        _sift_up(heap, pos, i)
    else:
        _sift_down(heap, pos, last, i)


@numba.njit(cache=True, nogil=True, inline="always")
def pop(heap, pos, size):
    """The smallest entry (score, edge), taken out of the heap."""
    s, e = heap[0, 0], np.int64(heap[0, 1])
    remove(heap, pos, size, e)
    return s, e


@numba.njit(cache=True, nogil=True, inline="always")
def rescore(heap, pos, size, e, s):
    """Give edge ``e`` (in the heap) the score ``s``."""
    i = pos[e]
    old = heap[i, 0]
    heap[i, 0] = s
    if s < old:
        _sift_up(heap, pos, i)
    elif s > old:
        _sift_down(heap, pos, size, i)
