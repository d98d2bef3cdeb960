"""Block tasks from voxel geometry: stages think in voxels of their volumes, the runner in nm.

``volume_task``: a stage that reads one volume and writes another on its chunk grid (predict,
fragments, relabel). ``grid_task``: a stage on a block grid recorded earlier (the region graph's
``graph/meta.json``: the graph, its local agglomeration and the correction features).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pipeline.geometry import Roi, in_nm
from pipeline.io.base import Volume
from pipeline.runner.blockwise import BlockTask
from pipeline.runner.grid import Block


def volume_task(
    name: str,
    source: Volume,
    output: Volume,
    block: Sequence[int],
    process: Callable[[Block], Any],
    params: dict[str, Any],
    context: Sequence[int] = (0, 0, 0),
    **options: Any,
) -> BlockTask:
    """A task over ``source``'s whole ROI in blocks of ``block`` voxels (read grown by
    ``context`` voxels) that writes ``output`` on its chunk grid; its done markers sit beside
    ``output``. ``options``: further ``BlockTask`` fields."""
    vs = source.voxel_size
    return BlockTask(
        name=name,
        total_roi=source.roi,
        block_shape=in_nm(block, vs),
        context=in_nm(context, vs),
        process=process,
        done_url=output.url,
        params=params,
        voxel_size=vs,
        write_grid=output.chunk_roi_shape,
        grid_origin=output.offset,
        **options,
    )


def grid_task(
    name: str,
    grid: Mapping[str, Any],
    process: Callable[[Block], Any],
    done_url: str,
    params: dict[str, Any],
    **options: Any,
) -> BlockTask:
    """A task on a recorded block grid: ``grid`` holds ``offset`` (nm), ``voxel_size``, and
    ``shape`` and ``block_shape`` in voxels. ``options``: further ``BlockTask`` fields."""
    vs = tuple(grid["voxel_size"])
    return BlockTask(
        name=name,
        total_roi=Roi(tuple(grid["offset"]), in_nm(grid["shape"], vs)),
        block_shape=in_nm(grid["block_shape"], vs),
        process=process,
        done_url=done_url,
        params=params,
        voxel_size=vs,
        **options,
    )
