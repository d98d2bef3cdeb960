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


# Edge-verified table: 8-byte slots (fingerprint << 32 | edge + 1), for loops that keep each
# edge's two ends in row ``e`` of an int32 array (columns 0 and 1; a negative end 0 marks a dead
# edge). A slot holds no key: a fingerprint match is confirmed by the ends of its edge, so an
# entry left behind by an edge that moved or died never matches (a dead edge has a dead end or
# none at all), and the table stays a quarter of the keyed one above.

_FP = np.uint64(32)
_LOW = np.uint64(0xFFFFFFFF)


@numba.njit(cache=True, nogil=True, inline="always")
def pair_hash(a, b, n):
    """The 32-bit hash of the unordered pair ``a``, ``b`` (both < ``n``): the top half of a
    Fibonacci hash, whose top bits also give the home slot."""
    return (pair_key(a, b, n) * _GOLDEN) >> _FP


@numba.njit(cache=True, nogil=True, inline="always")
def home_slot(table, h):
    """Where hash ``h`` starts probing in ``table``: its top bits (capacity <= 2**32)."""
    return np.int64((h * np.uint64(table.size)) >> _FP)


@numba.njit(cache=True, nogil=True, inline="always")
def find_edge(table, h, a, b, ends):
    """The slot of the live edge joining ``a`` and ``b`` (hash ``h``) and that edge, or the
    empty slot where it belongs and -1."""
    mask = table.size - 1
    s = home_slot(table, h)
    while table[s] != 0:
        if table[s] >> _FP == h:
            g = np.int64(table[s] & _LOW) - 1
            e0, e1 = ends[g, 0], ends[g, 1]
            if (e0 == a and e1 == b) or (e0 == b and e1 == a):
                return s, g
        s = (s + 1) & mask
    return s, np.int64(-1)


@numba.njit(cache=True, nogil=True, inline="always")
def set_slot(table, s, h, e):
    table[s] = (h << _FP) | np.uint64(e + 1)


@numba.njit(cache=True, nogil=True)
def grown_edges(table):
    """The same entries in an edge-verified table of twice the capacity."""
    out = np.zeros(2 * table.size, np.uint64)
    mask = out.size - 1
    for x in table:
        if x != 0:
            s = home_slot(out, x >> _FP)
            while out[s] != 0:
                s = (s + 1) & mask
            out[s] = x
    return out
