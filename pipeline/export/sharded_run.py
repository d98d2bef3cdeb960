"""Run the sharded objects export: which scale level to mesh, the sharding of meshes and skeletons,
the map over blocks and the reduce over shards, then the ``info`` files and segment properties.

The mesh scale level (``mesh_level``): by default the coarsest level at which a segment of
``min_size`` voxels (the smallest that gets a mesh) still has at least ``KEEP_VOXELS`` voxels,
i.e. the largest level whose voxel holds at most ``min_size / KEEP_VOXELS`` full-resolution voxels
(with the default ``min_size`` of 1000 and isotropic voxels that is level 1: 8x fewer voxels to
mesh and skeletonize). Labels are mode-downsampled, so thin neurites survive at that level.
``mesh_level=0`` meshes at full resolution.

The skeleton scale level (``skeleton_level``): by default the coarsest level at which a
``min_size`` segment keeps ``KEEP_SKELETON_VOXELS`` voxels (level 2 for the default 1000 voxels:
a skeleton needs the centre line and radius, not the surface, and TEASAR's cost grows with the
voxels it walks, so this is 4-5x faster than at level 1; igneous users skeletonize at 32-40 nm
voxels alike). ``skeleton_level=0`` skeletonizes at full resolution.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from distributed import Client

from pipeline.export.layers import level_geometry
from pipeline.export.objects import ObjectParams, ObjectsBlock
from pipeline.export.properties import write_segment_properties
from pipeline.export.sharded import ShardBuckets, ShardReduce
from pipeline.export.sharding import n_shards, sharding_spec
from pipeline.geometry import Roi, in_nm
from pipeline.io.cloud import cloudpath
from pipeline.io.fs import filesystem, join, write_whole
from pipeline.runner.blockwise import BlockTask, RunReport, run_blockwise

KEEP_VOXELS = 64
KEEP_SKELETON_VOXELS = 8


def default_mesh_level(info: dict[str, Any], min_size: int, keep: int = KEEP_VOXELS) -> int:
    """The coarsest level where a ``min_size`` segment keeps ``keep`` voxels."""
    r0 = np.prod([float(r) for r in info["scales"][0]["resolution"]])
    best = 0
    for level, scale in enumerate(info["scales"]):
        cell = np.prod([float(r) for r in scale["resolution"]]) / r0
        if cell * keep <= max(min_size, keep):
            best = level
    return best


def default_skeleton_level(info: dict[str, Any], min_size: int) -> int:
    """The coarsest level where a ``min_size`` segment keeps ``KEEP_SKELETON_VOXELS`` voxels."""
    return default_mesh_level(info, min_size, KEEP_SKELETON_VOXELS)


def object_layout(
    info: dict[str, Any],
    level: int,
    block_shape_vox: Sequence[int],
    skeleton_level: int | None = None,
) -> dict[str, Any]:
    """Blocks and sharding of the objects at ``level`` (recorded for incremental re-exports);
    skeletons at ``skeleton_level`` (default: ``level``) within the same blocks."""
    shape = level_geometry(info, level)[0]
    block = tuple(min(b, s) for b, s in zip(block_shape_vox, shape, strict=True))
    n_blocks = int(np.prod([math.ceil(s / b) for s, b in zip(shape, block, strict=True)]))
    return {
        "format": "sharded",
        "mesh_level": level,
        "skeleton_level": level if skeleton_level is None else int(skeleton_level),
        "object_block": list(block),
        "mesh": sharding_spec(n_blocks, "raw"),
        "skeletons": sharding_spec(n_blocks, "gzip"),
    }


def object_infos(info: dict[str, Any], layout: dict[str, Any]) -> dict[str, dict]:
    res = [float(r) for r in info["scales"][layout["mesh_level"]]["resolution"]]
    mesh = {
        "@type": "neuroglancer_multilod_draco",
        "vertex_quantization_bits": 16,
        "transform": [res[0], 0, 0, 0, 0, res[1], 0, 0, 0, 0, res[2], 0],
        "lod_scale_multiplier": 1.0,
        "sharding": layout["mesh"],
    }
    skeletons = {
        "@type": "neuroglancer_skeletons",
        "transform": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0],
        "vertex_attributes": [{"id": "radius", "data_type": "float32", "num_components": 1}],
        "segment_properties": "../segment_properties",
        "sharding": layout["skeletons"],
    }
    return {"mesh": mesh, "skeletons": skeletons}


def write_sharded_objects(
    layer: str,
    info: dict[str, Any],
    params: ObjectParams,
    layout: dict[str, Any],
    client: Client | None = None,
    progress: bool = True,
    only_blocks: frozenset | None = None,
    touched: np.ndarray | None = None,
    tag: str = "",
) -> list[RunReport]:
    """Map over the blocks of the mesh level, reduce over shards, write infos and properties.
    The level-0 voxel counts must already be in the buckets (``SizeCounter`` in the pyramid)."""
    level, spec = layout["mesh_level"], layout["mesh"]
    shape, res, voxel_offset = level_geometry(info, level)
    root, shards = cloudpath(layer), n_shards(spec)
    only_shards = None
    if touched is not None:
        only_shards = frozenset(ShardBuckets(spec).of(touched).tolist())
    run = {**params.as_dict(), **layout, "tag": tag}
    buckets = ShardBuckets(spec)
    skeleton_level = layout.get("skeleton_level", level)  # records before it: one level
    mapper = ObjectsBlock(layer, info, buckets, params, level, only_blocks, touched, skeleton_level)
    reducer = ShardReduce(layer, params, res, {"mesh": spec, "skeletons": layout["skeletons"]})
    reducer.only, reducer.touched = only_shards, touched
    tasks = [
        BlockTask(
            name="export-objects",
            total_roi=Roi(voxel_offset, shape).to_world(res),
            block_shape=in_nm(layout["object_block"], res),
            process=mapper,
            done_url=root,
            params=run,
            voxel_size=res,
        ),
        BlockTask(
            name="export-objects-reduce",
            total_roi=Roi((0,), (shards,)),
            block_shape=(1,),
            context=(0,),
            process=reducer,
            done_url=root,
            params=run,
            voxel_size=(1,),
        ),
    ]
    reports = [run_blockwise(t, client=client, progress=progress) for t in tasks]
    for name, body in object_infos(info, layout).items():
        if getattr(params, "meshes" if name == "mesh" else "skeletons"):
            write_whole(join(root, name, "info"), json.dumps(body).encode())
    write_segment_properties(root, shards)
    _remove_pieces(root, shards)
    return reports


def _remove_pieces(root: str, shards: int) -> None:
    """The map step's pieces are not needed once every shard is written."""
    for shard in range(shards):
        fs, path = filesystem(join(root, "objects", str(shard)))
        if fs.exists(path):
            fs.rm(path, recursive=True)
