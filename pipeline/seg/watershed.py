"""Fragments (supervoxels) from a boundary map: a seeded watershed whose seeds are the maxima of
the distance transform of the thresholded boundary map, so that every cell interior gets about
one seed and thin necks between cells do not. Pure numpy/scipy/edt/cc3d; works on one block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cc3d
import edt
import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed


@dataclass(frozen=True)
class FragmentParams:
    """Parameters of :func:`fragments_from_boundary` (hashed into done markers)."""

    threshold: float = 0.5  # boundary >= threshold is membrane for the distance transform
    sigma_seeds: float = 2.0  # smoothing of the distance transform before finding maxima (voxels)
    sigma_weights: float = 1.0  # smoothing of the boundary map used as the flooding height
    alpha: float = 0.9  # height = alpha * boundary + (1 - alpha) * (1 - normalised distance)
    min_size: int = 50  # fragments smaller than this (voxels) merge into their best neighbour
    mode: str = "3d"  # "3d", or "2d": independent watersheds per z-section (anisotropic data)

    def as_dict(self) -> dict:
        return asdict(self)


def _smooth(a: np.ndarray, sigma: float, anisotropy: Sequence[float]) -> np.ndarray:
    if not sigma:
        return a
    # sigma in units of the smallest voxel side, so anisotropic volumes are smoothed isotropically
    base = min(anisotropy)
    return ndi.gaussian_filter(a, [sigma * base / s for s in anisotropy], mode="nearest")


def _seeds(dist: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the regional maxima of ``dist`` (plateaus become one seed) where dist > 0."""
    peaks = (ndi.maximum_filter(dist, size=3, mode="nearest") == dist) & (dist > 0)
    labels, n = cc3d.connected_components(
        peaks, connectivity=26 if dist.ndim == 3 else 8, return_N=True
    )
    return labels.astype(np.int32, copy=False), int(n)


def _watershed_nd(
    boundary: np.ndarray, p: FragmentParams, anisotropy: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded watershed of one array. Returns (labels, rep): label k >= 1 is the basin of seed
    k and ``rep[k]`` the flat index of its seed's first voxel (C order)."""
    none = (np.zeros(boundary.shape, np.int32), np.zeros(1, np.int64))
    fg = boundary < p.threshold
    if not fg.any():
        return none
    dist = edt.edt(np.ascontiguousarray(fg), anisotropy=tuple(float(a) for a in anisotropy))
    # no membrane at all: edt reports infinite distances; cap them at the array's extent
    extent = float(sum(s * a for s, a in zip(boundary.shape, anisotropy, strict=True)))
    np.minimum(dist, extent, out=dist)
    dist = _smooth(dist.astype(np.float32, copy=False), p.sigma_seeds, anisotropy)
    seeds, n = _seeds(dist)
    if n == 0:
        return none
    where = np.flatnonzero(seeds)
    rep = np.full(n + 1, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(rep, seeds.ravel()[where], where)
    dmax = float(dist.max())
    height = p.alpha * _smooth(boundary, p.sigma_weights, anisotropy)
    if p.alpha < 1.0 and dmax > 0:
        height = height + (1.0 - p.alpha) * (1.0 - dist / dmax)
    labels = watershed(height, seeds)
    return labels, rep


def _small_contacts(
    inv: np.ndarray, boundary: np.ndarray, small: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean boundary (max of the two voxels) of each pair of labels that touch, for pairs with
    at least one small label: the other contacts are never needed, so they are not counted."""
    us, vs, vals = [], [], []
    small_vox = small[inv]
    for d in range(inv.ndim):
        a = [slice(None)] * inv.ndim
        b = [slice(None)] * inv.ndim
        a[d], b[d] = slice(0, -1), slice(1, None)
        la, lb = inv[tuple(a)], inv[tuple(b)]
        pick = (la != lb) & (small_vox[tuple(a)] | small_vox[tuple(b)])
        us.append(la[pick])
        vs.append(lb[pick])
        vals.append(np.maximum(boundary[tuple(a)][pick], boundary[tuple(b)][pick]))
    la, lb = np.concatenate(us), np.concatenate(vs)
    val = np.concatenate(vals).astype(np.float64)
    u, v = np.minimum(la, lb).astype(np.int64), np.maximum(la, lb).astype(np.int64)
    n = int(inv.max()) + 1
    keys, einv = np.unique(u * n + v, return_inverse=True)
    count = np.bincount(einv, minlength=len(keys))
    total = np.bincount(einv, weights=val, minlength=len(keys))
    return keys // n, keys % n, total / np.maximum(count, 1)


def merge_small_fragments(labels: np.ndarray, boundary: np.ndarray, min_size: int) -> np.ndarray:
    """Merge each fragment smaller than ``min_size`` voxels into the neighbour it shares the
    lowest mean boundary with (smallest first, so chains of small pieces end up in a big one).
    Fragments without a neighbour stay. A merged fragment keeps the label of the one it joined.
    ``labels`` are non-negative integers (0 = background, never merged)."""
    if min_size <= 1 or labels.size == 0:
        return labels
    inv = labels  # non-negative labels index the tables directly (watershed labels are 0..n)
    sizes = np.bincount(inv.ravel()).astype(np.int64)
    small = (sizes < min_size) & (sizes > 0)
    small[0] = False
    if not small.any():
        return labels
    u, v, mean = _small_contacts(inv, boundary, small)
    keep = (u != 0) & (v != 0)
    u, v, mean = u[keep], v[keep], mean[keep]
    nbrs: dict[int, list[tuple[float, int]]] = {}
    for a, b, m in zip(u.tolist(), v.tolist(), mean.tolist(), strict=True):
        nbrs.setdefault(a, []).append((m, b))
        nbrs.setdefault(b, []).append((m, a))
    parent = list(range(len(sizes)))
    size = sizes.tolist()

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for node in np.flatnonzero(small)[np.argsort(sizes[small], kind="stable")].tolist():
        if size[node] >= min_size or find(node) != node:
            continue
        for _mean, other in sorted(nbrs.get(node, ())):
            r = find(other)
            if r != node:
                parent[node] = r
                size[r] += size[node]
                break
    roots = np.array([find(i) for i in range(len(sizes))])
    return roots[labels]


def watershed_fragments(
    boundary: np.ndarray,
    params: FragmentParams | None = None,
    anisotropy: Sequence[float] = (1.0, 1.0, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Fragments of a float boundary map in [0, 1] (1 = membrane), labelled by seed.

    Returns (labels, rep): ``labels`` int64, 0 = no fragment, k >= 1 = the basin grown from
    seed k; ``rep[k]`` = flat (C order) index of the first voxel of seed k, from which the
    fragments stage builds ids that do not depend on the block (see stages/fragments.py).
    All boundary (no voxel under the threshold): no seeds, all zeros. In "2d" mode every
    z-section is segmented on its own."""
    p = params or FragmentParams()
    boundary = np.asarray(boundary, dtype=np.float32)
    if p.mode not in ("2d", "3d"):
        raise ValueError(f"fragment mode must be '2d' or '3d', got {p.mode!r}")
    if p.mode == "3d":
        labels, rep = _watershed_nd(boundary, p, anisotropy)
        labels = merge_small_fragments(labels, boundary, p.min_size)
        return labels.astype(np.int64, copy=False), rep
    out = np.zeros(boundary.shape, np.int64)
    reps = [np.zeros(1, np.int64)]
    offset, section = 0, int(np.prod(boundary.shape[1:]))
    for z in range(boundary.shape[0]):
        labels, rep = _watershed_nd(boundary[z], p, anisotropy[1:])
        if len(rep) == 1:
            continue
        labels = merge_small_fragments(labels, boundary[z], p.min_size).astype(np.int64)
        out[z] = np.where(labels > 0, labels + offset, 0)
        reps.append(rep[1:] + z * section)
        offset += len(rep) - 1
    return out, np.concatenate(reps)


def fragments_from_boundary(
    boundary: np.ndarray,
    params: FragmentParams | None = None,
    anisotropy: Sequence[float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """In-memory fragments: :func:`watershed_fragments` relabelled to uint64 ids 1..n, each
    one 6-connected piece."""
    labels, _ = watershed_fragments(boundary, params, anisotropy)
    return cc3d.connected_components(labels, connectivity=6, out_dtype=np.uint64)
