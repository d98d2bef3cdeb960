"""Mutex-watershed fragments: the second segmentation path, from affinities with long-range
offsets (``pipeline.seg.mutex``), blockwise under the same rules as the watershed fragments.

Each block clusters its read ROI (write ROI grown by ``context`` voxels, at least the longest
offset, so edges near the faces see the same affinities as in a whole-volume run), crops the
result to the write ROI and names every segment ``1 + global C-order index of its first voxel in
the write ROI``: unique by construction, and the id decodes to a voxel of the block that holds
it, like the watershed's seed ids (``pipeline.seg.ids``). Segments that cross a block face get
two ids; the region graph's face contacts and agglomeration join them again, as they join
watershed fragments cut at a face. The output is a fragments volume that every later stage
(graph, agglomerate, segment, relabel) takes unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from distributed import Client

from pipeline.errors import InputError
from pipeline.io.affinities import affinity_offsets, read_affinities
from pipeline.io.volume import Volume, open_input, open_volume
from pipeline.runner.blockwise import Block, RunReport, run_blockwise
from pipeline.runner.cache import cached
from pipeline.runner.tasks import volume_task
from pipeline.seg.ids import ids_from_local
from pipeline.seg.mutex import MutexParams, mutex_segments
from pipeline.stages.fragments import DEFAULT_BLOCK, blocks_per_task, create_fragments


def block_ids(segments: np.ndarray, begin: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """Relabel ``segments`` (a write ROI at voxel ``begin`` of a volume of ``shape``) to global
    ids: 1 + C-order index of each segment's first voxel."""
    values, first, inverse = np.unique(segments, return_index=True, return_inverse=True)
    ids = ids_from_local(first, segments.shape, begin, shape)
    return ids[inverse.reshape(segments.shape)]


class MutexBlock:
    """Mutex watershed on the read ROI, crop to the write ROI, ids from first voxels."""

    def __init__(self, affinities_url: str, fragments_url: str, params: dict[str, Any]):
        self.affinities_url, self.fragments_url = affinities_url, fragments_url
        self.params = params

    def __call__(self, block: Block) -> None:
        avol = cached(f"vol:r:{self.affinities_url}", lambda: open_volume(self.affinities_url))
        fvol = cached(f"vol:a:{self.fragments_url}", lambda: open_volume(self.fragments_url, "a"))
        segments = mutex_segments(
            read_affinities(avol, block.read_roi),
            affinity_offsets(avol),
            MutexParams(**self.params),
        )
        origin = tuple(-o for o in avol.offset)
        read_vox = block.read_roi.shift(origin).to_voxels(avol.voxel_size)
        write_vox = block.write_roi.shift(origin).to_voxels(avol.voxel_size)
        inner = tuple(
            slice(w - r, w - r + s)
            for w, r, s in zip(write_vox.begin, read_vox.begin, write_vox.shape, strict=True)
        )
        fvol.write(block.write_roi, block_ids(segments[inner], write_vox.begin, avol.shape))


def mutex_scheme(vol: Volume, block: Sequence[int], context: Sequence[int]) -> dict[str, Any]:
    return {
        "ids": "first-voxel",
        "id_formula": "1 + C-order index of the segment's first voxel in its block's write ROI",
        "shape": list(vol.shape),
        "block_shape": list(block),
        "grid_shape": [math.ceil(s / b) for s, b in zip(vol.shape, block, strict=True)],
        "context": list(context),
    }


def run_mutex_fragments(
    affinities_url: str,
    fragments_url: str,
    params: MutexParams | None = None,
    block_shape: Sequence[int] | None = None,
    context: Sequence[int] | None = None,
    client: Client | None = None,
    progress: bool = True,
) -> RunReport:
    """Write uint64 fragments of an affinity volume by mutex watershed (resumable)."""
    params = params or MutexParams()
    avol = open_input(affinities_url, "segment")
    offsets = affinity_offsets(avol)
    reach = max(abs(v) for o in offsets for v in o)
    block = tuple(min(b, s) for b, s in zip(block_shape or DEFAULT_BLOCK, avol.shape, strict=True))
    ctx = tuple(context if context is not None else (2 * reach,) * 3)
    if min(ctx) < reach:
        raise InputError(f"context {list(ctx)} must be at least the longest offset ({reach})")
    scheme = mutex_scheme(avol, block, ctx)
    record = {"affinities": affinities_url, "method": "mutex", **params.as_dict()}
    fvol = create_fragments(fragments_url, avol, block, scheme, record)
    task = volume_task(
        "fragments",
        avol,
        fvol,
        block,
        MutexBlock(affinities_url, fvol.url, params.as_dict()),
        {"affinities": affinities_url, "method": "mutex", **params.as_dict(), **scheme},
        context=ctx,
        blocks_per_task=blocks_per_task(block),
    )
    return run_blockwise(task, client=client, progress=progress)
