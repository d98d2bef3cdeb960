"""Multiscale pyramids: which factor each level uses, and downsampling by mean (image) or mode
(labels). Arrays are (z, y, x); factors are (z, y, x) too.

Labels are reduced by the most frequent non-zero label of each 2x2x2 (or 1x2x2) cell, so thin
neurites survive and a cell is background only when all of it is. Ties go to the smaller label,
which keeps the result deterministic and independent of the block a cell falls in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Factor = tuple[int, int, int]


def level_factors(voxel_size: Sequence[int], shape: Sequence[int], levels: int) -> list[Factor]:
    """The factor of each level above the first (len = ``levels`` - 1): halve every axis whose
    resolution is within 2x of the finest axis (anisotropic z is left until the others catch up);
    stop early once a level would be a single voxel in every halved axis."""
    res = [float(v) for v in voxel_size]
    size = [int(s) for s in shape]
    out: list[Factor] = []
    for _ in range(max(0, levels - 1)):
        finest = min(res)
        f = tuple(2 if r < 2 * finest and s > 1 else 1 for r, s in zip(res, size, strict=True))
        if all(x == 1 for x in f):
            break
        out.append(f)  # type: ignore[arg-type]
        res = [r * x for r, x in zip(res, f, strict=True)]
        size = [math.ceil(s / x) for s, x in zip(size, f, strict=True)]
    return out


def cumulative(factors: Sequence[Factor]) -> list[Factor]:
    """Factor of each level relative to level 0 (level 0 included)."""
    out: list[Factor] = [(1, 1, 1)]
    for f in factors:
        out.append(tuple(a * b for a, b in zip(out[-1], f, strict=True)))  # type: ignore[arg-type]
    return out


def _cells(arr: np.ndarray, factor: Factor) -> np.ndarray:
    """(Z, Y, X, fz*fy*fx) view of the cells, edge-padded to a multiple of the factor."""
    pad = [(0, (-s) % f) for s, f in zip(arr.shape, factor, strict=True)]
    if any(p[1] for p in pad):
        arr = np.pad(arr, pad, mode="edge")
    z, y, x = (s // f for s, f in zip(arr.shape, factor, strict=True))
    fz, fy, fx = factor
    cells = arr.reshape(z, fz, y, fy, x, fx).transpose(0, 2, 4, 1, 3, 5)
    return cells.reshape(z, y, x, fz * fy * fx)


def downsample_mean(image: np.ndarray, factor: Factor) -> np.ndarray:
    """Average of each cell, rounded back to the input dtype for integers."""
    if factor == (1, 1, 1):
        return image
    cells = _cells(image, factor)
    mean = cells.mean(axis=-1, dtype=np.float64)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        return np.clip(np.rint(mean), info.min, info.max).astype(image.dtype)
    return mean.astype(image.dtype)


def downsample_mode(labels: np.ndarray, factor: Factor, slab: int = 16) -> np.ndarray:
    """The most frequent non-zero label of each cell (0 only where the cell is all 0)."""
    if factor == (1, 1, 1):
        return labels
    cells = _cells(labels, factor)
    out = np.empty(cells.shape[:3], dtype=labels.dtype)
    k = cells.shape[-1]
    for z0 in range(0, cells.shape[0], slab):  # bounded temporaries: slab * Y * X * k * k
        c = np.sort(cells[z0 : z0 + slab].reshape(-1, k), axis=1)
        counts = (c[:, :, None] == c[:, None, :]).sum(axis=2)
        counts[c == 0] = 0
        # sorted rows: argmax takes the first (smallest) label among the most frequent ones
        best = np.argmax(counts, axis=1)
        out[z0 : z0 + slab] = c[np.arange(len(c)), best].reshape(out[z0 : z0 + slab].shape)
    return out
