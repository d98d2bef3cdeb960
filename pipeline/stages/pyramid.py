"""Pyramid stage: the scale levels ``s1``, ``s2``, ... of a Zarr volume (OME-Zarr multiscale), so
viewers load a coarse level instead of every voxel when zoomed out.

Each level is built blockwise from the level below: a block task per block of the new level
(whole shards or chunks of it, so no two tasks write one) reads the cells it covers in the level
below and reduces them, by the most frequent label for segmentations and fragments, by the
mean for images. Nothing holds a whole level in memory. A level is listed in the volume's
``ome.multiscales`` only once all its blocks are written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.geometry import Coord, Roi
from pipeline.io.volume import open_input, output_shards
from pipeline.io.zarr_v3 import ZarrVolume, create_level, open_level, set_levels
from pipeline.runner.blockwise import Block, BlockTask, RunReport, run_blockwise
from pipeline.runner.cache import cached
from pipeline.scales import (
    Factor,
    cumulative,
    downsample_mean,
    downsample_mode,
    level_factors,
    levels_for,
)

__all__ = ["level_layout", "run_pyramid"]

LEVEL_BLOCK = 128  # voxels a side (at most) of a block of a new level


class PyramidBlock:
    """One block of level ``level``: the level below reduced by ``factor`` (voxel ROIs)."""

    def __init__(self, url: str, level: int, factor: Factor, labels: bool):
        self.url, self.level, self.factor, self.labels = url, level, tuple(factor), labels

    def __call__(self, block: Block) -> None:
        src = cached(f"pyramid:r:{self.url}:{self.level - 1}", self._source)
        dst = cached(f"pyramid:a:{self.url}:{self.level}", self._target)
        roi = block.write_roi
        lo = [b * f for b, f in zip(roi.begin, self.factor, strict=True)]
        hi = [min(e * f, s) for e, f, s in zip(roi.end, self.factor, src.shape[-3:], strict=True)]
        lead = (slice(None),) * (src.ndim - 3)
        data = np.asarray(src[(*lead, *(slice(a, b) for a, b in zip(lo, hi, strict=True)))])
        dst[(*lead, *roi.to_slices())] = reduce_cells(data, self.factor, self.labels)

    def _source(self):
        return open_level(self.url, self.level - 1)

    def _target(self):
        return open_level(self.url, self.level, "r+")


def reduce_cells(data: np.ndarray, factor: Factor, labels: bool) -> np.ndarray:
    """``data`` ((c,) z, y, x) reduced by ``factor``: mode for labels, mean for images."""
    if labels:
        return downsample_mode(data, factor)
    if data.ndim == 3:
        return downsample_mean(data, factor)
    return np.stack([downsample_mean(channel, factor) for channel in data])


def level_layout(
    shape: Sequence[int], chunks: Sequence[int]
) -> tuple[Coord, Coord, Coord, Coord | None]:
    """(shape, chunks, block, shards) of a level of ``shape`` voxels, given the chunks of level
    0: chunks of level 0 (at most the level), blocks of whole chunks up to ``LEVEL_BLOCK`` a side,
    and, at scale, one shard per block."""
    shape = tuple(int(s) for s in shape)
    chunks = tuple(max(1, min(int(c), s)) for c, s in zip(chunks, shape, strict=True))
    block = tuple(
        c * max(1, min(LEVEL_BLOCK // c, math.ceil(s / c)))
        for c, s in zip(chunks, shape, strict=True)
    )
    return shape, chunks, block, output_shards(shape, block, chunks)


def _pyramid_volume(url: str) -> ZarrVolume:
    vol = open_input(url, "downsample")
    if not isinstance(vol, ZarrVolume) or vol._group is None:
        raise InputError(
            f"{url} is not a petaseg Zarr volume (a group with s0): scale levels are written "
            "beside s0; convert it with `petaseg convert` first"
        )
    return vol


def run_pyramid(
    url: str,
    labels: bool | None = None,
    levels: int | None = None,
    client: Any = None,
    progress: bool = True,
) -> list[RunReport]:
    """Write the scale levels above ``s0`` of the Zarr volume ``url`` (``levels`` in all, level 0
    included; default: until the top level fits one chunk, at most 8) and list them in its
    OME-Zarr metadata. ``labels``: reduce by mode (default: when the volume carries
    ``image-label`` metadata, as fragments and segmentations do). Resumable: finished blocks
    are skipped."""
    vol = _pyramid_volume(url)
    if labels is None:
        labels = "image-label" in (vol._group.attrs.get("ome") or {})
    factors = level_factors(vol.voxel_size, vol.shape, levels_for(vol.shape, vol.chunks, levels))
    shape, reports = tuple(vol.shape), []
    for level, factor in enumerate(factors, start=1):
        shape = tuple(math.ceil(s / f) for s, f in zip(shape, factor, strict=True))
        reports.append(_run_level(vol, level, factor, shape, labels, client, progress))
        set_levels(vol.url, cumulative(factors[:level]))
    return reports


def _run_level(
    vol: ZarrVolume,
    level: int,
    factor: Factor,
    shape: Coord,
    labels: bool,
    client: Any,
    progress: bool,
) -> RunReport:
    shape, chunks, block, shards = level_layout(shape, vol.chunks)
    create_level(vol.url, level, shape, chunks, shards)
    task = BlockTask(
        name=f"pyramid-s{level}",
        total_roi=Roi((0, 0, 0), shape),
        block_shape=block,
        process=PyramidBlock(vol.url, level, factor, labels),
        done_url=f"{vol.url}/s{level}",
        params={"factor": list(factor), "labels": labels, "source": vol.attrs.get("petaseg")},
        write_grid=shards or chunks,
    )
    return run_blockwise(task, client=client, progress=progress)
