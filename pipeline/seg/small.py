"""Merging of small fragments into their best neighbour (compiled passes over the labels).

A fragment smaller than ``min_size`` voxels joins the neighbour it shares the lowest mean
boundary with (the mean over its contact faces of the larger boundary value of the two voxels),
smallest fragments first, so chains of small pieces end up in a big one; a fragment that has
grown to ``min_size`` by absorbing others stays. Contacts are counted only for pairs with a
small member (the others are never needed), in one compiled pass that stores only those
faces. The result is a map label -> label, applied where the labels are used.
"""

from __future__ import annotations

import numba
import numpy as np

from pipeline.seg.forest import find_root


@numba.njit(cache=True, nogil=True)
def _sizes(lab, n):
    sizes = np.zeros(n, np.int64)
    nz, ny, nx = lab.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                sizes[lab[z, y, x]] += 1
    return sizes


@numba.njit(cache=True, nogil=True)
def _contact(a, b, small):
    return b != a and b > 0 and (small[a] or small[b])


@numba.njit(cache=True, nogil=True)
def _small_contacts(lab, bnd, small, out_a, out_b, out_val):
    """Faces between two labels > 0 with at least one small member: the two labels and the
    larger boundary value, written from index 0 of the ``out_*`` arrays when they are large
    enough. Returns the number of such faces."""
    nz, ny, nx = lab.shape
    room = out_a.size
    k = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                a = lab[z, y, x]
                if a <= 0:
                    continue
                if x + 1 < nx and _contact(a, lab[z, y, x + 1], small):
                    if k < room:
                        out_a[k], out_b[k] = a, lab[z, y, x + 1]
                        out_val[k] = max(bnd[z, y, x], bnd[z, y, x + 1])
                    k += 1
                if y + 1 < ny and _contact(a, lab[z, y + 1, x], small):
                    if k < room:
                        out_a[k], out_b[k] = a, lab[z, y + 1, x]
                        out_val[k] = max(bnd[z, y, x], bnd[z, y + 1, x])
                    k += 1
                if z + 1 < nz and _contact(a, lab[z + 1, y, x], small):
                    if k < room:
                        out_a[k], out_b[k] = a, lab[z + 1, y, x]
                        out_val[k] = max(bnd[z, y, x], bnd[z + 1, y, x])
                    k += 1
    return k


def _contacts(lab3: np.ndarray, bnd3: np.ndarray, small: np.ndarray):
    """(u, v, mean boundary) of the label pairs with a small member (u < v)."""
    room = 4096
    while True:
        a = np.empty(room, np.int64)
        b = np.empty(room, np.int64)
        val = np.empty(room, np.float32)
        k = _small_contacts(lab3, bnd3, small, a, b, val)
        if k <= room:
            break
        room = k  # second pass with room for all of them
    a, b, val = a[:k], b[:k], val[:k]
    u, v = np.minimum(a, b), np.maximum(a, b)
    keys, inv = np.unique(u * small.size + v, return_inverse=True)
    count = np.bincount(inv, minlength=len(keys))
    total = np.bincount(inv, weights=val.astype(np.float64), minlength=len(keys))
    return keys // small.size, keys % small.size, total / np.maximum(count, 1)


@numba.njit(cache=True, nogil=True)
def _merge(order, starts, others, sizes, min_size):
    n = sizes.size
    parent = np.arange(n)
    size = sizes.copy()
    for node in order:
        if size[node] >= min_size or parent[node] != node:
            continue
        for k in range(starts[node], starts[node + 1]):
            r = find_root(parent, others[k])
            if r != node:
                parent[node] = r
                size[r] += size[node]
                break
    roots = np.empty(n, np.int64)
    for i in range(n):
        roots[i] = find_root(parent, i)
    return roots


def small_fragment_roots(
    labels: np.ndarray, boundary: np.ndarray, min_size: int, n_labels: int | None = None
) -> np.ndarray | None:
    """The map label -> label after merging fragments smaller than ``min_size`` voxels (see the
    module docstring), or None when nothing merges. ``labels``: non-negative integers (2D or
    3D, any strides; 0 = background, never merged), ``boundary`` the float boundary map of the
    same shape, ``n_labels`` (max label + 1) when known. Ties in the mean boundary go to the
    smaller neighbour label, ties in size to the smaller label."""
    if min_size <= 1 or labels.size == 0:
        return None
    lab3 = labels[None] if labels.ndim == 2 else labels
    bnd3 = boundary[None] if boundary.ndim == 2 else boundary
    n = int(labels.max()) + 1 if n_labels is None else int(n_labels)
    sizes = _sizes(lab3, n)
    small = (sizes < min_size) & (sizes > 0)
    small[0] = False
    if not small.any():
        return None
    u, v, mean = _contacts(lab3, np.asarray(bnd3, np.float32), small)
    node = np.concatenate([u, v])
    other = np.concatenate([v, u])
    m = np.concatenate([mean, mean])
    order = np.lexsort((other, m, node))  # per node: by mean boundary, then neighbour label
    starts = np.searchsorted(node[order], np.arange(n + 1))
    idx = np.flatnonzero(small)
    by_size = idx[np.argsort(sizes[idx], kind="stable")]
    return _merge(by_size, starts, other[order], sizes, min_size).astype(labels.dtype, copy=False)
