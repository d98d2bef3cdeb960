"""A 4-ary min-heap of (score, edge) entries for compiled (numba) loops: one (capacity, 2)
float64 array whose rows are (score, edge index) (indices below 2**53 are exact as floats), so
an entry is one 16-byte row and a node's four children share one cache line. Ordered by score
and then by edge index, the order of Python's ``heapq`` on ``(score, edge)`` tuples. Callers keep
the size and rebind the array that :func:`push` returns (it doubles it when full)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def _less(s1, e1, s2, e2):
    return s1 < s2 or (s1 == s2 and e1 < e2)


@numba.njit(cache=True, nogil=True)
def _sift_down(heap, size, i):
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
        heap[i, 0], heap[i, 1] = heap[c, 0], heap[c, 1]
        i = c
    heap[i, 0], heap[i, 1] = s, e


@numba.njit(cache=True, nogil=True)
def new_heap(score):
    """A heap of the entries (score[e], e) for every e."""
    heap = np.empty((score.size, 2), np.float64)
    heap[:, 0] = score
    heap[:, 1] = np.arange(score.size)
    for i in range((score.size - 2) // 4, -1, -1):
        _sift_down(heap, score.size, i)
    return heap


@numba.njit(cache=True, nogil=True)
def pop(heap, size):
    """The smallest entry (score, edge); the heap then holds ``size - 1`` entries."""
    s, e = heap[0, 0], np.int64(heap[0, 1])
    size -= 1
    if size > 0:
        heap[0, 0], heap[0, 1] = heap[size, 0], heap[size, 1]
        _sift_down(heap, size, 0)
    return s, e


@numba.njit(cache=True, nogil=True)
def push(heap, size, s, e):
    """Add (s, e) to a heap of ``size`` entries; returns the (possibly grown) array, which then
    holds ``size + 1`` entries."""
    if size == heap.shape[0]:
        grown = np.empty((2 * heap.shape[0] + 1, 2), np.float64)
        grown[:size] = heap[:size]
        heap = grown
    ef = np.float64(e)
    i = size
    while i > 0:
        p = (i - 1) // 4
        if not _less(s, ef, heap[p, 0], heap[p, 1]):
            break
        heap[i, 0], heap[i, 1] = heap[p, 0], heap[p, 1]
        i = p
    heap[i, 0], heap[i, 1] = s, ef
    return heap
