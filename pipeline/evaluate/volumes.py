"""Scoring two label volumes block by block: in this process, or on a Dask cluster where every
block's sparse contingency table is computed by a worker and the tables are summed in a tree of
tasks on the workers, so the client holds only the final table (and a bounded number of
futures, never one per block)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from distributed import wait

from pipeline.errors import InputError
from pipeline.evaluate.tables import Contingency, block_contingency, reduce_pairs, scores_from_table
from pipeline.geometry import Roi
from pipeline.io.volume import Volume, open_input

FAN_IN = 8  # tables summed by one reduction task
BLOCK_VOXELS = 1 << 24  # voxels per block in this process: a few hundred MB for two uint64 blocks
CLUSTER_BLOCK_VOXELS = 1 << 22  # smaller blocks on a cluster, so every worker has work


def block_slices(shape: Sequence[int], block: Sequence[int]) -> Iterator[tuple[slice, ...]]:
    """The blocks of a volume in raster order, generated lazily."""
    grid = [range(0, s, b) for s, b in zip(shape, block, strict=True)]
    for z in grid[0]:
        for y in grid[1]:
            for x in grid[2]:
                yield tuple(
                    slice(o, min(o + b, s)) for o, b, s in zip((z, y, x), block, shape, strict=True)
                )


def _read(vol: Volume, sl: tuple[slice, ...]) -> np.ndarray:
    vroi = Roi.from_slices(sl)
    return vol.read(vroi.to_world(vol.voxel_size).shift(vol.offset))


def block_table(
    seg_url: str, gt_url: str, sl: tuple[slice, ...], ignore_gt_zero: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The contingency table of one block of two volumes (a cluster task)."""
    seg_vol, gt_vol = open_input(seg_url, "evaluate"), open_input(gt_url, "evaluate against")
    return block_contingency(_read(seg_vol, sl), _read(gt_vol, sl), ignore_gt_zero)


def sum_tables(
    *tables: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One table from several: the counts of equal (seg, gt) pairs summed, sorted by pair."""
    return reduce_pairs(*(np.concatenate([t[k] for t in tables]) for k in range(3)))


def _opened(seg_url: str, gt_url: str) -> tuple[Volume, Volume]:
    seg_vol, gt_vol = open_input(seg_url, "evaluate"), open_input(gt_url, "evaluate against")
    if seg_vol.shape != gt_vol.shape:
        raise InputError(
            f"segmentation {seg_url} has shape {seg_vol.shape} but ground truth {gt_url} has "
            f"shape {gt_vol.shape}; crop one to the other before scoring"
        )
    for vol in (seg_vol, gt_vol):
        if vol.channels is not None:
            raise InputError(f"{vol.url} has {vol.channels} channels; a label volume has none")
        if vol.dtype.kind == "f":
            raise InputError(f"{vol.url} is {vol.dtype}; labels must be an integer volume")
    return seg_vol, gt_vol


def default_block_shape(vol: Volume, voxels: int) -> tuple[int, ...]:
    """Chunk-aligned blocks (at least 64 a side), doubled until they hold about ``voxels``."""
    block = tuple(max(c, 64) for c in vol.chunks)
    while int(np.prod(block)) < voxels and block != tuple(vol.shape):
        block = tuple(min(2 * b, s) for b, s in zip(block, vol.shape, strict=True))
    return block


def _table_on_cluster(client: Any, seg_url: str, gt_url: str, blocks, ignore_gt_zero: bool):
    """Block tables summed in a tree of tasks (``FAN_IN`` tables per task, level by level as
    blocks finish, like a counter's carries); at most ``max_leaves`` block tasks are pending at
    once. Returns the future of the final table."""
    max_leaves = 4 * max(1, len(client.scheduler_info().get("workers", {})) or 1)
    levels: list[list[Any]] = [[]]
    pending: deque[Any] = deque()
    for sl in blocks:
        fut = client.submit(block_table, seg_url, gt_url, sl, ignore_gt_zero, pure=False)
        pending.append(fut)
        levels[0].append(fut)
        level = 0
        while len(levels[level]) == FAN_IN:
            merged = client.submit(sum_tables, *levels[level], pure=False)
            levels[level] = []
            if level + 1 == len(levels):
                levels.append([])
            levels[level + 1].append(merged)
            level += 1
        if len(pending) >= max_leaves:
            wait(pending.popleft())
    rest = [f for level in levels for f in level]
    return rest[0] if len(rest) == 1 else client.submit(sum_tables, *rest, pure=False)


def evaluate_volumes(
    seg_url: str,
    gt_url: str,
    ignore_gt_zero: bool = True,
    block_shape: Sequence[int] | None = None,
    client: Any | None = None,
) -> dict[str, float]:
    """Score two volumes (any URL ``open_volume`` reads) block by block. Without a client, in
    this process (one block of each and the sparse table in memory); with a Dask client, on its
    workers (see ``_table_on_cluster``). The figures are the same either way."""
    seg_vol, gt_vol = _opened(seg_url, gt_url)
    if block_shape is None:
        voxels = CLUSTER_BLOCK_VOXELS if client is not None else BLOCK_VOXELS
        block_shape = default_block_shape(seg_vol, voxels)
    blocks = block_slices(seg_vol.shape, block_shape)
    if client is not None:
        final = _table_on_cluster(client, seg_url, gt_url, blocks, ignore_gt_zero)
        return scores_from_table(*final.result())
    table = Contingency()
    for sl in blocks:
        table.add_block(_read(seg_vol, sl), _read(gt_vol, sl), ignore_gt_zero)
    return scores_from_table(*table.table())
