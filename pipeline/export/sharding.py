"""Neuroglancer precomputed sharding (``neuroglancer_uint64_sharded_v1``) for meshes and skeletons.

A segment id goes to shard ``(hash(id >> preshift) & shard_mask) >> minishard_bits`` and, inside
it, to a minishard; a shard file is ``[fixed index][minishard data][gzip minishard indices]``.
Shard files are assembled by cloud-volume's ``synthesize_shard_files`` (one call per shard, in the
task that owns the shard) and read back here the way Neuroglancer reads them, so an incremental
re-export can copy the entries of segments it does not touch.

How many shards: about one per two object blocks (a power of two), so the reduce step has as
many tasks as the volume has work, each shard holds the segments of a few blocks, and the number
of files grows with the volume's size divided by the block size, not with the number of segments.
"""

from __future__ import annotations

import gzip
import math

import numpy as np

from pipeline.io.fs import filesystem, join, write_whole

MINISHARD_BITS = 6
SHARD_BITS_MAX = 16


def sharding_spec(n_blocks: int, data_encoding: str = "raw") -> dict:
    """The sharding spec of ``info`` for a volume of ``n_blocks`` object blocks."""
    shard_bits = min(SHARD_BITS_MAX, max(0, math.ceil(math.log2(max(1, n_blocks / 2)))))
    return {
        "@type": "neuroglancer_uint64_sharded_v1",
        "preshift_bits": 0,
        "hash": "murmurhash3_x86_128",
        "minishard_bits": MINISHARD_BITS,
        "shard_bits": int(shard_bits),
        "minishard_index_encoding": "gzip",
        "data_encoding": data_encoding,
    }


def _spec(spec: dict):
    from cloudvolume.datasource.precomputed.sharding import ShardingSpecification

    return ShardingSpecification.from_dict(spec)


def n_shards(spec: dict) -> int:
    return 2 ** int(spec["shard_bits"])


def shard_numbers(ids: np.ndarray, spec: dict) -> np.ndarray:
    """The shard number of each id (int64)."""
    sp = _spec(spec)
    out = np.empty(len(ids), np.int64)
    for i, seg in enumerate(np.asarray(ids, np.uint64).tolist()):
        out[i] = int(sp.compute_shard_location(seg).shard_number, 16)
    return out


def shard_file(spec: dict, shard: int) -> str:
    """The shard's file name (lower-case hex, zero-padded as Neuroglancer expects)."""
    digits = math.ceil(int(spec["shard_bits"]) / 4)
    return f"{shard:0{digits}x}.shard" if digits else "0.shard"


def write_shard(
    folder: str,
    spec: dict,
    shard: int,
    entries: dict[int, bytes],
    data_offset: dict[int, int] | None = None,
) -> None:
    """Write (or remove, when ``entries`` is empty) the file of one shard, whole."""
    from cloudvolume.datasource.precomputed.sharding import synthesize_shard_files

    name = shard_file(spec, shard)
    fs, path = filesystem(join(folder, name))
    if not entries:
        if fs.exists(path):
            fs.rm(path)
        return
    files = synthesize_shard_files(_spec(spec), entries, data_offset)
    if list(files) != [name]:
        raise RuntimeError(f"shard {shard}: entries of other shards given ({sorted(files)})")
    write_whole(join(folder, name), files[name])


def read_index(data: bytes, spec: dict) -> dict[int, tuple[int, int]]:
    """Every id of a shard file with the byte range of its entry (as Neuroglancer reads it: the
    fixed index gives each minishard index's range; a minishard index is three delta-coded uint64
    rows of ids, offsets and sizes; offsets count from the end of the fixed index)."""
    n_mini = 2 ** int(spec["minishard_bits"])
    fixed = np.frombuffer(data[: 16 * n_mini], "<u8").reshape(n_mini, 2)
    out: dict[int, tuple[int, int]] = {}
    for start, end in fixed.tolist():
        if end <= start:
            continue
        raw = data[16 * n_mini + start : 16 * n_mini + end]
        if spec.get("minishard_index_encoding") == "gzip":
            raw = gzip.decompress(raw)
        rows = np.frombuffer(raw, "<u8").reshape(3, -1)
        ids = np.cumsum(rows[0])
        offsets = np.cumsum(rows[1] + np.concatenate([[0], rows[2][:-1]]).astype(np.uint64))
        for seg, off, size in zip(ids.tolist(), offsets.tolist(), rows[2].tolist(), strict=True):
            out[int(seg)] = (16 * n_mini + int(off), 16 * n_mini + int(off) + int(size))
    return out


def read_entries(folder: str, spec: dict, shard: int) -> tuple[bytes, dict[int, tuple[int, int]]]:
    """A shard file's bytes and index (empty when the shard has no file)."""
    fs, path = filesystem(join(folder, shard_file(spec, shard)))
    if not fs.exists(path):
        return b"", {}
    with fs.open(path, "rb") as f:
        data = f.read()
    return data, read_index(data, spec)


def entry_data(data: bytes, where: tuple[int, int], spec: dict) -> bytes:
    chunk = data[where[0] : where[1]]
    return gzip.decompress(chunk) if spec.get("data_encoding") == "gzip" else chunk
