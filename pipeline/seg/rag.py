"""Region adjacency of a label block: every face between two voxels of different labels is a
contact; contacts are summed per label pair into count, sum and a histogram of the boundary
value on the contact (the larger boundary value of the two voxels, i.e. 1 - the nearest-neighbour
affinity). One compiled pass (``contacts.block_contacts``); table helpers for merging blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.seg.contacts import block_contacts


def region_contacts(
    labels: np.ndarray,
    values: np.ndarray,
    nbins: int = 32,
    owned: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    """Edge statistics of a label array.

    ``owned`` (default: the whole array) is the shape of the corner ``[0, owned)`` whose voxels
    this call is responsible for: pairs are taken for x in it, with x + e_d possibly one voxel
    beyond it. Reading a block's write ROI grown by one voxel on the + side and passing the write
    ROI shape as ``owned`` counts every face pair of the volume exactly once over all blocks.

    Returns ``u < v`` (label values, dtype of ``labels``), ``count`` (int64), ``sum`` (float64),
    and ``hist`` ((E, nbins) uint32 of values binned on [0, 1]) when ``nbins`` > 0, sorted by
    (u, v). Label 0 is a label like any other here; callers drop it where it means background.
    """
    if labels.ndim == 2:
        labels, values = labels[None], values[None]
        owned = None if owned is None else (1, *owned)
    return block_contacts(labels, values, nbins, owned)[1]


def histogram_quantile(hist: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` in [0, 1] of values binned on [0, 1] (rows of ``hist``), interpolated
    linearly inside the bin that holds it."""
    hist = np.atleast_2d(hist).astype(np.float64)
    nbins = hist.shape[1]
    cum = np.cumsum(hist, axis=1)
    total = cum[:, -1:]
    target = q * total
    idx = np.minimum((cum < target).sum(axis=1), nbins - 1)
    below = np.where(idx > 0, cum[np.arange(len(idx)), idx - 1], 0.0)
    inside = hist[np.arange(len(idx)), idx]
    frac = np.where(inside > 0, (target[:, 0] - below) / np.maximum(inside, 1), 0.5)
    return (idx + np.clip(frac, 0.0, 1.0)) / nbins


def reduce_edges(
    u: np.ndarray,
    v: np.ndarray,
    count: np.ndarray,
    total: np.ndarray,
    hist: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Sum the statistics of repeated (u, v) rows (u < v expected); rows come out sorted by
    (u, v). Used to merge block tables and to contract a graph onto clusters."""
    order = np.lexsort((v, u))
    u, v, count, total = u[order], v[order], count[order], total[order]
    out: dict[str, np.ndarray] = {}
    if u.size == 0:
        out = {"u": u, "v": v, "count": count, "sum": total}
        if hist is not None:
            out["hist"] = hist[order]
        return out
    start = np.ones(u.size, bool)
    start[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    idx = np.flatnonzero(start)
    out = {
        "u": u[idx],
        "v": v[idx],
        "count": np.add.reduceat(count, idx),
        "sum": np.add.reduceat(total, idx),
    }
    if hist is not None:
        out["hist"] = np.add.reduceat(hist[order], idx, axis=0)
    return out


def pair_keys(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """One int64 per (u, v) index pair (both < n), for sorted lookups."""
    return np.asarray(u, np.int64) * np.int64(n) + np.asarray(v, np.int64)
