"""Segment properties (``segment_properties/info``): every segment's id, label and size in voxels,
so Neuroglancer lists, searches and sorts segments without reading the volume.

The reduce step leaves one size table per shard (``objects/sizes/<shard>.npz``: ids, sizes); the
properties are streamed from them shard by shard into the ``inline`` JSON Neuroglancer reads, so
no process holds the tables of all segments: memory is one shard's table. Segments are listed by
shard, then by id (Neuroglancer sorts the list by any property itself).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import numpy as np

from pipeline.io.fs import filesystem, is_local, join


def _load(url: str) -> dict[str, np.ndarray]:
    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        data = np.load(io.BytesIO(f.read()), allow_pickle=False)
        return {k: data[k] for k in data.files}


def shard_tables(root: str, n_shards: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, sizes) of each shard's segments, one shard at a time."""
    for shard in range(n_shards):
        a = _load(join(root, "objects", "sizes", f"{shard}.npz"))
        yield a["ids"], a["sizes"]


def read_sizes(root: str, n_shards: int) -> tuple[np.ndarray, np.ndarray]:
    """All segment ids and voxel counts, sorted by id (for tests and small volumes)."""
    parts = list(shard_tables(root, n_shards))
    ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.uint64)
    sizes = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    order = np.argsort(ids)
    return ids[order], sizes[order]


def _values(root: str, n_shards: int, column: int, quote: bool) -> Iterator[str]:
    first = True
    for table in shard_tables(root, n_shards):
        if len(table[column]) == 0:
            continue
        text = ", ".join(f'"{int(v)}"' if quote else str(int(v)) for v in table[column])
        yield text if first else ", " + text
        first = False


def write_segment_properties(root: str, n_shards: int) -> int:
    """Write ``segment_properties/info`` from the shards' size tables; returns the segments."""
    largest, count = 0, 0
    for ids, sizes in shard_tables(root, n_shards):
        count += len(ids)
        largest = max(largest, int(sizes.max()) if len(sizes) else 0)
    fs, path = filesystem(join(root, "segment_properties", "info"))
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    target = path + ".tmp" if is_local(fs) else path
    with fs.open(target, "w") as buf:
        _stream(buf, root, n_shards, largest)
    if target != path:
        fs.mv(target, path)
    return count


def _stream(buf, root: str, n_shards: int, largest: int) -> None:
    buf.write('{"@type": "neuroglancer_segment_properties", "inline": {"ids": [')
    buf.writelines(_values(root, n_shards, 0, True))
    buf.write('], "properties": [{"id": "label", "type": "label", "values": [')
    buf.writelines(_values(root, n_shards, 0, True))
    size = {"id": "size", "type": "number", "description": "voxels"}
    size["data_type"] = "uint32" if largest < 2**32 else "float32"
    buf.write("]}, " + json.dumps(size)[:-1] + ', "values": [')
    buf.writelines(_values(root, n_shards, 1, False))
    buf.write("]}]}}")
