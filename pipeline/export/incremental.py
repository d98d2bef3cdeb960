"""Incremental re-export after proofreading: re-mesh and re-skeletonize only the segments that the
edits between the exported version and the new one touched, and rewrite only their shards.

A sharded export records what it wrote (``objects/export.json``: layout, parameters, the
segmentation or fragments, and the edit log and version it showed). Given the edit log, the
segments touched since that version are read from the log's edits (each names the segments it
changed before and after); the blocks they lie in come from the shards' tables. Then:

1. the volumetric pyramid is rewritten through the new version's lookup table (cheap next to
   meshing; its first pass also recounts segment sizes),
2. the map step runs only on those blocks, on only the touched segments,
3. the reduce step runs only on the shards that hold a touched segment: it rebuilds the touched
   segments' entries and copies every other entry of the shard byte for byte. Other shard files
   are not opened for writing.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from distributed import Client

from pipeline.errors import InputError
from pipeline.io.cloud import cloudpath
from pipeline.io.fs import filesystem, join, write_whole

RECORD = "objects/export.json"


def write_record(layer: str, record: dict[str, Any]) -> None:
    write_whole(join(cloudpath(layer), RECORD), json.dumps(record, indent=1).encode())


def read_record(layer: str) -> dict[str, Any] | None:
    fs, path = filesystem(join(cloudpath(layer), RECORD))
    if not fs.exists(path):
        return None
    with fs.open(path, "r") as f:
        return json.load(f)


def version_lut(out: str, edit_log: str, version: int | None) -> tuple[str, int]:
    """Write the lookup table of ``version`` (default: the head) beside the export folder
    (``<out>.luts/v<N>``); returns its URL and the version."""
    from pipeline.proofread import EditLog

    with EditLog(edit_log) as log:
        v = log.head if version is None else int(version)
        url = f"{out.rstrip('/')}.luts/v{v}"
        fs, path = filesystem(join(url, "meta.json"))
        if not fs.exists(path):
            log.export(url, v)
    return url, v


def touched_segments(edit_log: str, old: int, new: int) -> np.ndarray:
    """Every segment an edit between versions ``old`` and ``new`` touched (either direction)."""
    from pipeline.proofread import EditLog

    lo, hi = sorted((int(old), int(new)))
    with EditLog(edit_log) as log:
        segs = {s for e in log.log() if lo < e["version"] <= hi for s in e["segments"]}
    return np.array(sorted(segs), np.uint64)


def blocks_of(layer: str, spec: dict, segments: np.ndarray) -> frozenset:
    """The object blocks ``segments`` lay in, from their shards' tables."""
    from pipeline.export.sharded import ShardBuckets

    root, want, out = cloudpath(layer), set(segments.tolist()), set()
    for shard in np.unique(ShardBuckets(spec).of(segments)).tolist():
        fs, path = filesystem(join(root, "objects", "sizes", f"{shard}.npz"))
        if not fs.exists(path):
            continue
        with fs.open(path, "rb") as f:
            import io

            t = np.load(io.BytesIO(f.read()), allow_pickle=False)
            ids, ptr, blocks = t["ids"], t["block_ptr"], t["blocks"]
        for i, seg in enumerate(ids.tolist()):
            if seg in want:
                out.update(blocks[ptr[i] : ptr[i + 1]].tolist())
    return frozenset(out)


def reexport_segmentation(
    layer: str,
    record: dict[str, Any],
    lut: str,
    version: int,
    client: Client | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Bring a sharded segmentation layer from ``record['version']`` to ``version``."""
    from pipeline.export.layers import write_pyramid
    from pipeline.export.objects import ObjectParams
    from pipeline.export.sharded import ShardBuckets, SizeCounter
    from pipeline.export.sharded_run import write_sharded_objects

    touched = touched_segments(record["edit_log"], record["version"], version)
    fs, path = filesystem(join(cloudpath(layer), "info"))
    with fs.open(path, "r") as f:
        info = json.load(f)
    factors = _factors(info)
    spec = record["mesh"]
    reports = write_pyramid(
        layer, "segmentation", info, factors, record["segmentation"], lut=lut, client=client,
        progress=progress, params={"count": spec}, counter=SizeCounter(layer, spec),
    )  # fmt: skip
    blocks = blocks_of(layer, spec, touched)
    params = ObjectParams(**record["params"])
    if len(touched):
        reports += write_sharded_objects(
            layer, info, params, record, client, progress, blocks, touched, tag=f"v{version}"
        )
    write_record(layer, {**record, "version": int(version), "lut": lut})
    shards = sorted(set(ShardBuckets(spec).of(touched).tolist()))
    return {
        "touched": touched.tolist(),
        "blocks": len(blocks),
        "shards": shards,
        "reports": reports,
    }


def _factors(info: dict) -> list[tuple[int, int, int]]:
    res = [[round(float(r)) for r in s["resolution"][::-1]] for s in info["scales"]]
    return [
        tuple(b // a for a, b in zip(lo, hi, strict=True))
        for lo, hi in zip(res[:-1], res[1:], strict=True)
    ]


def check_incremental(record: dict[str, Any] | None, segmentation: str, edit_log: str) -> bool:
    """Whether an export folder's record allows an incremental re-export of ``segmentation``."""
    if record is None or record.get("format") != "sharded" or record.get("edit_log") is None:
        return False
    if record["edit_log"] != edit_log:
        raise InputError(
            f"the export was made from the edit log {record['edit_log']}, not {edit_log}; "
            "export into a new folder"
        )
    return record.get("segmentation") == segmentation
