"""An insert-only hash table from a pair of node indices to an edge index, for compiled (numba)
graph loops: one (capacity, 2) uint64 array whose rows are (key + 1, edge), 0 marking an empty
slot, so a probe reads one cache line. Linear probing; callers keep the number of entries and
rebind the array :func:`grown` returns."""

from __future__ import annotations

import numba
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, nogil=True, inline="always")
def pair_key(a, b, n):
    """The key (plus one, never 0) of the unordered pair of nodes ``a``, ``b`` (both < ``n``)."""
    lo, hi = min(a, b), max(a, b)
    return np.uint64(lo) * np.uint64(n) + np.uint64(hi) + np.uint64(1)


@numba.njit(cache=True, nogil=True)
def new_pairs(capacity):
    """An empty table with ``capacity`` (a power of two) slots."""
    return np.zeros((capacity, 2), np.uint64)


@numba.njit(cache=True, nogil=True, inline="always")
def pair_slot(table, key):
    """The slot holding ``key`` or the empty slot where it belongs."""
    mask = table.shape[0] - 1
    s = np.int64((key * _GOLDEN) >> np.uint64(32)) & mask
    while table[s, 0] != 0 and table[s, 0] != key:
        s = (s + 1) & mask
    return s


@numba.njit(cache=True, nogil=True)
def grown(table):
    """The same entries in a table of twice the capacity."""
    out = new_pairs(2 * table.shape[0])
    for s in range(table.shape[0]):
        if table[s, 0] != 0:
            t = pair_slot(out, table[s, 0])
            out[t, 0], out[t, 1] = table[s, 0], table[s, 1]
    return out
