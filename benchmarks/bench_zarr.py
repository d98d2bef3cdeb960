"""Files and seconds of the segmentation's Zarr outputs, unsharded vs sharded, and reading a
sharded output back, zarr-python (what petaseg uses) vs TensorStore (``zarr3`` driver).

Input: a synthetic Voronoi boundary map (64x128x128, 12-voxel cells) mirror-tiled to ``SHAPE``
(float32 Zarr, 64^3 chunks). ``petaseg segment`` (fragments with the default 128^3 blocks,
graph, agglomeration, one threshold, relabel, and the final segmentation's pyramid) runs twice
on 2 worker processes: as it is below ``SHARD_ABOVE`` (unsharded), and with ``SHARD_ABOVE``
lowered to 1 so the same volume is written as it would be at scale (sharded). ``files``: stored
files under each output's arrays (chunks or shards, metadata excluded), per output and level.
``*_s``: seconds of the whole segment run. ``read_*_s``: reading the whole sharded fragments
volume, best of 3. ``extrapolated_files``: the same grids at the issue's 240x1000x1000 volume
(2.4e8 voxels) and at a 1e15-voxel (petavoxel) cube, from the layout rules at that size (one
file per chunk unsharded, per shard sharded; s0 only).
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (128, 512, 512)
TILE = (64, 128, 128)
REPEATS = 3


def tiled_boundary(shape=SHAPE, tile=TILE) -> np.ndarray:
    from pipeline.synthetic.cells import voronoi

    _, b = voronoi(tile, 12, seed=1)
    while any(s < t for s, t in zip(b.shape, shape, strict=True)):
        for axis in range(3):
            if b.shape[axis] < shape[axis]:
                b = np.concatenate([b, np.flip(b, axis)], axis=axis)
    return np.ascontiguousarray(b[tuple(slice(0, s) for s in shape)])


def stored_files(url: str) -> dict[str, int]:
    root = Path(url)
    return {
        level.name: sum(1 for p in (level / "c").rglob("*") if p.is_file())
        for level in sorted(root.glob("s*"))
        if (level / "c").exists()
    }


def run_segment(boundary_url: str, out: str, client, sharded: bool) -> tuple[float, dict]:
    import pipeline.io.volume as volume
    from pipeline.io.volume import open_volume
    from workflows.run import segment_boundaries
    from workflows.schema import SegmentStage, Stages

    saved = volume.SHARD_ABOVE
    volume.SHARD_ABOVE = 1 if sharded else saved
    try:
        t0 = time.perf_counter()
        result = segment_boundaries(
            boundary_url, out, Stages(segment=SegmentStage(thresholds=[0.7])), client, False
        )
        seconds = time.perf_counter() - t0
    finally:
        volume.SHARD_ABOVE = saved
    seg = result["segmentations"][0]["segmentation"]
    outputs = {"fragments": result["fragments_url"], "segmentation": seg}
    info = {}
    for name, url in outputs.items():
        vol = open_volume(url)
        info[name] = {
            "chunks": list(vol.chunks),
            "shards": list(vol.shards) if vol.shards else None,
            "files": stored_files(url),
        }
    return seconds, {**info, "urls": outputs}


def read_seconds(url: str) -> dict[str, float]:
    import tensorstore as ts
    import zarr

    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{url}/s0"}}
    store = ts.open(spec, read=True).result()
    timings = {"zarr": [], "tensorstore": []}
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        a = zarr.open_array(f"{url}/s0", mode="r")[...]
        timings["zarr"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = store.read().result()
        timings["tensorstore"].append(time.perf_counter() - t0)
        assert np.array_equal(a, b)
    return {k: min(v) for k, v in timings.items()}


def files_at(shape, chunks, shards) -> int:
    grid = shards or chunks
    return math.prod(math.ceil(s / g) for s, g in zip(shape, grid, strict=True))


def extrapolate() -> dict:
    """Files of s0 at larger volumes from the layout rules themselves (the default 128^3
    fragment blocks): today's unsharded layout vs what the rules give at that size."""
    from pipeline.io.volume import output_shards
    from pipeline.stages.fragments import DEFAULT_BLOCK, fragment_chunks
    from pipeline.stages.relabel import segmentation_layout

    big = {"2.4e8 (240x1000x1000)": (240, 1000, 1000), "1e15 (100000^3)": (100_000,) * 3}
    out = {}
    for label, shape in big.items():
        chunks = fragment_chunks(DEFAULT_BLOCK)
        _, seg_chunks, seg_shards = segmentation_layout(DEFAULT_BLOCK, shape)
        out[label] = {
            "fragments_unsharded": files_at(shape, chunks, None),
            "fragments_sharded": files_at(
                shape, chunks, output_shards(shape, DEFAULT_BLOCK, chunks)
            ),
            "segmentation_unsharded": files_at(shape, DEFAULT_BLOCK, None),
            "segmentation_sharded": files_at(shape, seg_chunks, seg_shards),
        }
    return out


def main(json_out: bool = False) -> dict:
    from distributed import Client, LocalCluster

    from pipeline.io.volume import create_volume
    from pipeline.stages.warm import warm

    with tempfile.TemporaryDirectory(prefix="bench-zarr-") as tmp:
        bnd = create_volume(f"{tmp}/in.zarr/boundary", SHAPE, "float32", (8, 8, 8))
        bnd.write(bnd.roi, tiled_boundary())
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        with cluster, Client(cluster) as client:
            client.run(warm)
            runs, seconds = {}, {}
            for mode in ("unsharded", "sharded"):
                seconds[mode], runs[mode] = run_segment(
                    bnd.url, f"{tmp}/{mode}.zarr/seg", client, mode == "sharded"
                )
        reads = read_seconds(runs["sharded"]["urls"]["fragments"])
    for info in runs.values():
        info.pop("urls")
    result = {
        "shape": list(SHAPE),
        "voxels": math.prod(SHAPE),
        "workers": 2,
        "runs": runs,
        "segment_unsharded_s": round(seconds["unsharded"], 2),
        "segment_sharded_s": round(seconds["sharded"], 2),
        "sharded_over_unsharded_time": round(seconds["sharded"] / seconds["unsharded"], 3),
        "read_fragments_zarr_s": round(reads["zarr"], 3),
        "read_fragments_tensorstore_s": round(reads["tensorstore"], 3),
        "zarr_over_tensorstore_read_time": round(reads["zarr"] / reads["tensorstore"], 3),
        "extrapolated_files": extrapolate(),
    }
    if not json_out:
        for k, v in result.items():
            print(f"{k}: {v}")
    return result


if __name__ == "__main__":
    main()
