"""Fragment ids from seed positions: ``id = 1 + global C-order index of the seed's first voxel``.

Unique by construction (two seeds never share a first voxel), at most the number of voxels in
the volume, and the same in every block that sees the seed: a basin that crosses a block face
keeps one id on both sides when both blocks found its seed (the usual case with enough
context), so blockwise fragments agree with a whole-volume run instead of being cut at every
face. An id decodes back to its seed's voxel, hence to the block that owns the seed: lookup
tables are partitioned by that block, and foreign or stale ids (seeds far outside the block that
holds them) are detected.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ids_from_local(
    local_flat: np.ndarray,
    local_shape: Sequence[int],
    local_offset: Sequence[int],
    volume_shape: Sequence[int],
) -> np.ndarray:
    """Global ids of seeds given by flat indices into an array at ``local_offset`` (voxels)."""
    coords = np.unravel_index(np.asarray(local_flat, np.int64), tuple(local_shape))
    glob = [c + o for c, o in zip(coords, local_offset, strict=True)]
    return (np.ravel_multi_index(glob, tuple(volume_shape)) + 1).astype(np.uint64)


def id_coords(ids: np.ndarray, volume_shape: Sequence[int]) -> tuple[np.ndarray, ...]:
    """Seed voxel (z, y, x) of each id (> 0)."""
    return np.unravel_index(np.asarray(ids, np.int64) - 1, tuple(volume_shape))


def id_blocks(
    ids: np.ndarray, volume_shape: Sequence[int], block_shape: Sequence[int]
) -> np.ndarray:
    """Linear (C order) index of the block of the grid that holds each id's seed."""
    coords = id_coords(ids, volume_shape)
    grid = [-(-s // b) for s, b in zip(volume_shape, block_shape, strict=True)]
    index = [c // b for c, b in zip(coords, block_shape, strict=True)]
    return np.ravel_multi_index(index, grid).astype(np.int64)


def ids_valid(
    ids: np.ndarray,
    volume_shape: Sequence[int],
    begin: Sequence[int],
    end: Sequence[int],
) -> np.ndarray:
    """Whether each id is a voxel of the volume whose seed lies in ``[begin, end)`` (voxels)."""
    ids = np.asarray(ids, np.uint64)
    ok = (ids >= 1) & (ids <= np.uint64(int(np.prod(volume_shape))))
    out = np.zeros(ids.shape, bool)
    if ok.any():
        coords = id_coords(ids[ok], volume_shape)
        inside = np.ones(int(ok.sum()), bool)
        for c, b, e in zip(coords, begin, end, strict=True):
            inside &= (c >= b) & (c < e)
        out[ok] = inside
    return out


def mix64(ids: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser of each id: well-mixed uint64 bits, stable across runs (for
    shard numbers, colours, anything that must spread ids evenly)."""
    x = np.asarray(ids, np.uint64).copy()
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x
