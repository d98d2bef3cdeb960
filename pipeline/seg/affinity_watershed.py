"""Fragments from affinities directly: a seeded watershed on the affinity graph (compiled with
numba).

Seeds are those of the boundary-map watershed (``watershed.watershed_seeds``: maxima of the
smoothed distance transform of ``1 - mean`` of the nearest-neighbour affinities below the
threshold). From them, regions grow across faces in order of decreasing affinity of the face
crossed: a voxel is claimed by the first region that reaches it over the best face, at level
``max(1 - affinity of the face, current level)`` (levels never decrease). This is the
minimax-path (Kruskal-like maximin) assignment of a minimum spanning forest rooted at the
seeds: every voxel joins the seed whose connecting path has the highest weakest affinity. It is
a bucket queue over 2^16 quantised levels, FIFO among equal levels; a voxel may be queued once
per improvement of its best level (at most 6 times) and is labelled when popped. Small fragments
are then merged as in the boundary watershed (``small``).

Faces follow the model library's offsets (``contacts.face_channels``): channel c at voxel p is
the affinity between p and p + offsets[c].
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from pipeline.seg.flood import interior, padded
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
    ``seeds`` over faces: ``levels[d, p]`` is the level of the face between p and p + strides[d]."""
    n = labels.size
    best = np.full(n, nlevels, np.int32)
    head = np.full(nlevels, -1, np.int64)
    tail = np.full(nlevels, -1, np.int64)
    cap = max(1024, n // 2)
    vox = np.empty(cap, np.int64)
    nxt = np.empty(cap, np.int64)
    lab = np.empty(cap, np.int32)
    used = 0
    nseed = seeds.size
    k = 0
    cur = 0
    while True:
        if k < nseed:  # every seed voxel first, in C order
            p = seeds[k]
            k += 1
        else:
            while cur < nlevels and head[cur] == -1:
                cur += 1
            if cur == nlevels:
                break
            e = head[cur]
            head[cur] = nxt[e]
            if head[cur] == -1:
                tail[cur] = -1
            p = vox[e]
            if labels[p] != 0:
                continue
            labels[p] = lab[e]
        here = labels[p]
        for t in range(6):
            d = t % 3
            m = p - strides[d] if t < 3 else p + strides[d]
            if labels[m] != 0:
                continue
            lev = np.int32(levels[d, m] if t < 3 else levels[d, p])
            lev = max(lev, np.int32(cur))
            if lev >= best[m]:
                continue
            best[m] = lev
            if used == vox.size:
                vox, nxt, lab = _grow(vox, used), _grow(nxt, used), _grow(lab, used)
            vox[used] = m
            nxt[used] = -1
            lab[used] = here
            if tail[lev] == -1:
                head[lev] = used
            else:
                nxt[tail[lev]] = used
            tail[lev] = used
            used += 1


def face_levels(affinities: np.ndarray, faces: Sequence[tuple[int, int]]) -> np.ndarray:
    """(3, *padded shape) uint16 levels ``round((1 - affinity) * 65535)`` of the face between
    each padded voxel p and p + e_d (d = z, y, x); faces with no neighbour get the top level."""
    shape = affinities.shape[1:]
    levels = scratch("face-levels", (3, *padded(shape)), np.uint16)
    levels.fill(LEVELS - 1)
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
    levels = face_levels(affinities, faces)
    strides = np.array([s // labels.itemsize for s in labels.strides], np.int64)
    _flood_edges(
        labels.reshape(-1), levels.reshape(3, -1), np.asarray(found.seeds, np.int64), strides,
        LEVELS,
    )  # fmt: skip
    inner = interior(labels, 3)
    roots = small_fragment_roots(inner, boundary, p.min_size, n_labels=len(found.rep))
    return Basins(inner, found.rep, roots)
