"""Fragments from affinities directly: a seeded watershed on the affinity graph (compiled with
numba).

Seeds are those of the boundary-map watershed (``watershed.watershed_seeds``: maxima of the
smoothed distance transform of ``1 - mean`` of the nearest-neighbour affinities below the
threshold). From them, regions grow across faces in order of decreasing affinity of the face
crossed: a voxel is claimed by the first region that reaches it over the best face, at level
``max(1 - affinity of the face, current level)`` (levels never decrease). This is the
minimax-path (Kruskal-like maximin) assignment of a minimum spanning forest rooted at the
seeds: every voxel joins the seed whose connecting path has the highest weakest affinity. It is
a bucket queue over 2^16 quantised levels (FIFO chunks, as in ``flood``), FIFO among equal
levels; a voxel may be queued once per improvement of its best level (at most 6 times) and is
labelled when popped. Small fragments are then merged as in the boundary watershed
(``small``).

Faces follow the model library's offsets (``contacts.face_channels``): channel c at voxel p is
the affinity between p and p + offsets[c].
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from pipeline.seg.flood import CHUNK, interior, padded  # CHUNK: the same chunked bucket queue
from pipeline.seg.scratch import scratch
from pipeline.seg.small import small_fragment_roots
from pipeline.seg.watershed import Basins, FragmentParams, _empty, watershed_seeds

LEVELS = 1 << 16


@numba.njit(cache=True, nogil=True)
def _grow(a, n):
    out = np.empty(2 * a.size, a.dtype)
    out[:n] = a[:n]
    return out


@numba.njit(cache=True, nogil=True)
def _flood_edges(labels, levels, seeds, strides, nlevels):
    """Flood ``labels`` (flat padded int32: seeds > 0, 0 to fill, -1 border) from the flat
    ``seeds`` over faces: ``levels[p, d]`` is the level of the face between p and p +
    strides[d]. A voxel's label and best level so far share one word (``state``), and its three
    face levels are adjacent, so looking at a neighbour touches few cache lines. Each bucket is
    a FIFO of chunks of ``CHUNK`` entries (``label << 32 | voxel``) from one pool, so the queue
    is read in order; emptied chunks are reused."""
    n = labels.size
    lowmask = np.int64(0xFFFFFFFF)
    state = np.empty(n, np.int64)  # label << 32 | best level (nlevels: not queued yet)
    for i in range(n):
        state[i] = (np.int64(labels[i]) << 32) | nlevels
    # per level: first chunk (-1 = empty), next entry to read there, last chunk, entries in it
    bk = np.full((nlevels, 4), -1, np.int64)
    pool = np.empty(max(64, n // 4 // CHUNK) * CHUNK, np.int64)
    cnext = np.empty(pool.size // CHUNK, np.int64)
    free = -1
    used = 0
    nseed = seeds.size
    k = 0
    cur = 0
    while True:
        if k < nseed:  # every seed voxel first, in C order
            p = seeds[k]
            k += 1
        else:
            while cur < nlevels and bk[cur, 0] == -1:
                cur += 1
            if cur == nlevels:
                break
            c = bk[cur, 0]
            r = bk[cur, 1]
            entry = pool[c * CHUNK + r]
            r += 1
            bk[cur, 1] = r
            if c == bk[cur, 2]:
                if r == bk[cur, 3]:  # the bucket is empty: free its only chunk
                    bk[cur, 0] = -1
                    bk[cur, 2] = -1
                    cnext[c] = free
                    free = c
            elif r == CHUNK:  # done with this chunk: free it, go on to the next
                bk[cur, 0] = cnext[c]
                bk[cur, 1] = 0
                cnext[c] = free
                free = c
            p = entry & lowmask
            if state[p] >> 32 != 0:
                continue
            state[p] = (entry & ~lowmask) | (state[p] & lowmask)
        here = state[p] & ~lowmask
        for t in range(6):
            d = t % 3
            m = p - strides[d] if t < 3 else p + strides[d]
            sm = state[m]
            if sm >> 32 != 0:
                continue
            lev = np.int64(levels[m, d] if t < 3 else levels[p, d])
            lev = max(lev, np.int64(cur))
            if lev >= (sm & lowmask):
                continue
            state[m] = lev  # label still 0
            c = bk[lev, 2]
            if c == -1 or bk[lev, 3] == CHUNK:  # a fresh chunk at the bucket's end
                fresh = free
                if fresh != -1:
                    free = cnext[fresh]
                else:
                    fresh = used
                    used += 1
                    if used > cnext.size:
                        pool = _grow(pool, (used - 1) * CHUNK)
                        cnext = _grow(cnext, used - 1)
                cnext[fresh] = -1
                if c == -1:
                    bk[lev, 0] = fresh
                    bk[lev, 1] = 0
                else:
                    cnext[c] = fresh
                bk[lev, 2] = fresh
                bk[lev, 3] = 0
                c = fresh
            pool[c * CHUNK + bk[lev, 3]] = here | m
            bk[lev, 3] += 1
    for i in range(n):
        labels[i] = np.int32(state[i] >> 32)


def face_levels(affinities: np.ndarray, faces: Sequence[tuple[int, int]]) -> np.ndarray:
    """(3, *padded shape) uint16 levels ``round((1 - affinity) * 65535)`` of the face between
    each padded voxel p and p + e_d (d = z, y, x), a view of a (*padded shape, 3) array (the
    faces of a voxel adjacent); faces with no neighbour get the top level."""
    shape = affinities.shape[1:]
    store = scratch("face-levels", (*padded(shape), 3), np.uint16)
    store.fill(LEVELS - 1)
    levels = np.moveaxis(store, -1, 0)
    for d, (c, shift) in enumerate(faces):
        if shape[d] < 2:
            continue
        src = [slice(None)] * 3
        src[d] = slice(shift, shift + shape[d] - 1)
        dst = [slice(1, s + 1) for s in shape]
        dst[d] = slice(1, shape[d])
        face = 1.0 - affinities[c][tuple(src)]
        levels[d][tuple(dst)] = np.rint(np.clip(face, 0.0, 1.0) * (LEVELS - 1))
    return levels


def affinity_basins(
    affinities: np.ndarray,
    faces: Sequence[tuple[int, int]],
    params: FragmentParams | None = None,
    anisotropy: Sequence[float] = (1.0, 1.0, 1.0),
) -> Basins:
    """Seeded watershed of a (C, z, y, x) float32 affinity array in [0, 1] over its faces
    (``faces``: (channel, shift) per axis z, y, x, see ``contacts.face_channels``), small
    fragments merged (``roots``). Scratch arrays, valid until the next call in this thread."""
    p = params or FragmentParams()
    if p.mode != "3d":
        raise ValueError("the affinity watershed works in 3D only (mode '3d')")
    affinities = np.asarray(affinities, np.float32)
    shape = affinities.shape[1:]
    nn = [c for c, _ in faces]
    boundary = np.ascontiguousarray(1.0 - affinities[nn].mean(axis=0), dtype=np.float32)
    found = watershed_seeds(boundary, p, anisotropy)
    if found is None:
        return _empty(shape)
    labels = found.labels
    levels = np.moveaxis(face_levels(affinities, faces), 0, -1)  # (*padded, 3), contiguous
    strides = np.array([s // labels.itemsize for s in labels.strides], np.int64)
    _flood_edges(
        labels.reshape(-1), levels.reshape(-1, 3), np.asarray(found.seeds, np.int64), strides,
        LEVELS,
    )  # fmt: skip
    inner = interior(labels, 3)
    roots = small_fragment_roots(inner, boundary, p.min_size, n_labels=len(found.rep))
    return Basins(inner, found.rep, roots)
