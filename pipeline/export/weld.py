"""Weld the block pieces of one segment's mesh: vertices that coincide (within a grid step) become
one vertex, and triangles that collapse are dropped.

Neighbouring blocks mesh the same seam and keep its vertices through simplification, so a seam
vertex appears once per block, equal up to float rounding. Positions are rounded to a grid of
``step`` voxels and looked up in a hash table (compiled, linear in the vertices), which replaces
a sort of all vertices (``zmesh.Mesh.merge_close_vertices``) at several times its speed.
"""

from __future__ import annotations

import numba
import numpy as np

_MIX = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, nogil=True)
def _weld_index(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """For each row of integer ``keys`` (n, 3) the index of the first row equal to it, counted
    among first occurrences only (0, 1, 2, ... in order of appearance); and how many there are."""
    n = keys.shape[0]
    cap = 1
    while cap < 2 * n + 2:
        cap *= 2
    slots = np.full(cap, -1, np.int64)
    out = np.empty(n, np.int64)
    n_unique = 0
    for i in range(n):
        h = np.uint64(0)
        for a in range(3):
            h = (h ^ np.uint64(keys[i, a])) * _MIX
        s = np.int64(h >> np.uint64(20)) & (cap - 1)
        while True:
            j = slots[s]
            if j == -1:
                slots[s] = i
                out[i] = n_unique
                n_unique += 1
                break
            if keys[j, 0] == keys[i, 0] and keys[j, 1] == keys[i, 1] and keys[j, 2] == keys[i, 2]:
                out[i] = out[j]
                break
            s = (s + 1) & (cap - 1)
    return out, n_unique


def weld(
    pieces: list[tuple[np.ndarray, np.ndarray]], step: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, faces) of the pieces joined, coinciding vertices merged, collapsed triangles
    and the vertices they alone used dropped. ``pieces``: (vertices (n, 3) float, faces (m, 3) int) with faces indexing their own
    piece's vertices."""
    offsets = np.cumsum([0] + [len(v) for v, _ in pieces])
    vertices = np.concatenate([np.asarray(v, np.float64) for v, _ in pieces])
    faces = np.concatenate(
        [np.asarray(f, np.int64) + o for (_, f), o in zip(pieces, offsets[:-1], strict=True)]
    )
    keys = np.rint(vertices / step).astype(np.int64)
    index, n_unique = _weld_index(keys)
    out = np.empty((n_unique, 3), np.float64)
    out[index] = vertices  # a later duplicate writes its (equal up to ``step``) position
    faces = index[faces]
    keep = (
        (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    )
    faces = faces[keep]
    used = np.zeros(n_unique, bool)
    used[faces] = True
    renumber = np.cumsum(used) - 1
    return out[used].astype(np.float32), renumber[faces].astype(np.uint32)
