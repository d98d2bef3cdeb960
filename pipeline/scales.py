"""Multiscale pyramids, shared by the pyramid stage and the precomputed export: how many levels,
which factor each level uses, and downsampling by mean (image) or mode (labels). Arrays are
(z, y, x); factors are (z, y, x) too.

Both go through tinybrain (about 10-35x faster than numpy here). Labels are reduced by a most
frequent non-zero label of each 2x2x2 (or 1x2x2) cell, so thin neurites survive and a cell is
background only when all of it is. A tie is decided by the cell's content alone, so the result is
deterministic and independent of the block a cell falls in (blocks are aligned to cells).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tinybrain

from pipeline.errors import InputError

Factor = tuple[int, int, int]


def levels_for(shape: Sequence[int], chunks: Sequence[int], levels: int | None) -> int:
    """Default number of levels: until the top level fits one chunk (at most 8)."""
    if levels is not None:
        if levels < 1:
            raise InputError(f"--levels {levels}: need at least 1 level")
        return levels
    ratio = max(s / c for s, c in zip(shape, chunks, strict=True))
    return max(1, min(8, 1 + math.ceil(math.log2(max(ratio, 1.0)))))


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


def _xyz(arr: np.ndarray) -> np.ndarray:
    """The (x, y, z) Fortran-ordered view tinybrain expects (no copy for a C-ordered array)."""
    return np.asfortranarray(arr.T)


def downsample_mean(image: np.ndarray, factor: Factor) -> np.ndarray:
    """Average of each cell (tinybrain), truncated to the input dtype for integers; a partial
    cell at the volume's end averages the voxels it has."""
    if factor == (1, 1, 1):
        return image
    out = tinybrain.downsample_with_averaging(_xyz(image), tuple(factor[::-1]))[0]
    return np.ascontiguousarray(out.T)


def downsample_mode(labels: np.ndarray, factor: Factor, slab: int = 16) -> np.ndarray:
    """A most frequent non-zero label of each cell (tinybrain's sparse mode; 0 only where the
    cell is all 0). ``slab`` is kept for callers; tinybrain needs no slabs."""
    if factor == (1, 1, 1):
        return labels
    out = tinybrain.downsample_segmentation(_xyz(labels), tuple(factor[::-1]), sparse=True)[0]
    return np.ascontiguousarray(out.T)
