"""The contingency table of two label arrays in one compiled pass: the distinct (a, b) label
pairs of voxels at the same place and how many voxels each pair has, counted in an
open-addressing hash table keyed by the pair (runs of equal pairs, common in label volumes,
are counted before they touch the table). No sorting of all voxels (``np.unique``) first."""

from __future__ import annotations

import numba
import numpy as np

_G1 = np.uint64(0x9E3779B97F4A7C15)
_G2 = np.uint64(0xC2B2AE3D27D4EB4F)


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(ka, kb, used, a, b):
    mask = ka.size - 1
    h = (np.uint64(a) * _G1) ^ (np.uint64(b) * _G2)
    s = np.int64(h >> np.uint64(32)) & mask
    while used[s] and (ka[s] != a or kb[s] != b):
        s = (s + 1) & mask
    return s


@numba.njit(cache=True, nogil=True)
def _grown(ka, kb, used, count):
    na, nb = np.zeros(2 * ka.size, np.uint64), np.zeros(2 * ka.size, np.uint64)
    nu, nc = np.zeros(2 * ka.size, np.uint8), np.zeros(2 * ka.size, np.int64)
    for s in range(ka.size):
        if used[s]:
            t = _slot(na, nb, nu, ka[s], kb[s])
            na[t], nb[t], nu[t], nc[t] = ka[s], kb[s], 1, count[s]
    return na, nb, nu, nc


@numba.njit(cache=True, nogil=True)
def _count_pairs(a, b, skip_a_zero, skip_b_zero):
    ka, kb = np.zeros(1024, np.uint64), np.zeros(1024, np.uint64)
    used, count = np.zeros(1024, np.uint8), np.zeros(1024, np.int64)
    n = 0
    i = 0
    size = a.size
    while i < size:
        x, y = a[i], b[i]
        j = i + 1
        while j < size and a[j] == x and b[j] == y:
            j += 1
        if not ((skip_a_zero and x == 0) or (skip_b_zero and y == 0)):
            s = _slot(ka, kb, used, x, y)
            if not used[s]:
                if 2 * (n + 1) > ka.size:
                    ka, kb, used, count = _grown(ka, kb, used, count)
                    s = _slot(ka, kb, used, x, y)
                ka[s], kb[s], used[s] = x, y, 1
                n += 1
            count[s] += j - i
        i = j
    keep = np.flatnonzero(used)
    return ka[keep], kb[keep], count[keep]


def pair_counts(
    a: np.ndarray, b: np.ndarray, skip_a_zero: bool = False, skip_b_zero: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (a, b) pairs of two label arrays of one shape (uint64 each) and their voxel
    counts (int64), sorted by (a, b); pairs with a zero label are left out where asked."""
    fa = np.ascontiguousarray(a).reshape(-1).astype(np.uint64, copy=False)
    fb = np.ascontiguousarray(b).reshape(-1).astype(np.uint64, copy=False)
    ka, kb, count = _count_pairs(fa, fb, bool(skip_a_zero), bool(skip_b_zero))
    order = np.lexsort((kb, ka))
    return ka[order], kb[order], count[order]
