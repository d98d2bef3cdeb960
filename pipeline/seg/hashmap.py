"""Open-addressing hash tables for compiled (numba) loops over label arrays: uint64 key -> dense
index 0, 1, 2, ... in order of first insertion, with linear probing and doubling. A table is
three arrays (keys, used, index); callers keep the number of entries and rebind the arrays
returned by :func:`grow` (outside their hot loops: see ``contacts``). Used to count per-label and per-label-pair statistics in one pass over
a block without sorting all voxels (np.unique) first.
"""

from __future__ import annotations

import numba
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing multiplier


@numba.njit(cache=True, nogil=True)
def new_table(capacity):
    """An empty table with room for ``capacity`` (a power of two) slots."""
    return (
        np.zeros(capacity, np.uint64),
        np.zeros(capacity, np.uint8),
        np.zeros(capacity, np.int64),
    )


@numba.njit(cache=True, nogil=True)
def slot_of(keys, used, key):
    """The slot holding ``key`` or the empty slot where it belongs."""
    mask = keys.size - 1
    s = np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(32)) & mask
    while used[s] and keys[s] != key:
        s = (s + 1) & mask
    return s


@numba.njit(cache=True, nogil=True)
def grow(keys, used, index):
    """The same entries in a table of twice the capacity."""
    k2, u2, i2 = new_table(keys.size * 2)
    for s in range(keys.size):
        if used[s]:
            t = slot_of(k2, u2, keys[s])
            k2[t] = keys[s]
            u2[t] = 1
            i2[t] = index[s]
    return k2, u2, i2
