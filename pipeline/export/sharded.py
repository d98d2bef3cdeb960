"""Sharded multi-resolution objects: the reduce step that turns the blocks' pieces into shard files.

Map (``ObjectsBlock``, one task per block of the mesh scale level): mesh and skeletonize every
segment of the block and write its pieces into the bucket of the shard that will hold the
segment (``objects/<shard>/<block>.npz``); the first pyramid pass counts each segment's voxels at
full resolution into the same buckets (``objects/<shard>/sizes-<block>.npz``). Reduce
(``ShardReduce``, one task per shard): join the pieces of each segment of the shard, build its
``multilod_draco`` mesh and its skeleton, and write the shard's two files (``mesh/<shard>.shard``,
``skeletons/<shard>.shard``) and its table (``objects/sizes/<shard>.npz``: ids, sizes, and the
blocks each segment lies in, which an incremental re-export reads). A shard is written by one task
only, whole; no process holds more than one shard's segments.
"""

from __future__ import annotations

import io
from collections import defaultdict

import numpy as np

from pipeline.export.multires import multires_entry
from pipeline.export.sharding import entry_data, read_entries, shard_numbers, write_shard
from pipeline.export.weld import weld
from pipeline.io.cloud import cloudpath, skeleton_class
from pipeline.io.fs import filesystem, join, write_whole
from pipeline.runner.blockwise import Block

SKELETON_ATTRIBUTES = [{"id": "radius", "data_type": "float32", "num_components": 1}]


class ShardBuckets:
    """Buckets of the sharded export: the precomputed shard number of each segment id."""

    def __init__(self, spec: dict):
        self.spec = spec

    def of(self, ids: np.ndarray) -> np.ndarray:
        return shard_numbers(np.asarray(ids, np.uint64), self.spec)


def _save(url: str, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_whole(url, buf.getvalue())


def _load(path: str, fs) -> dict[str, np.ndarray]:
    with fs.open(path, "rb") as f:
        data = np.load(io.BytesIO(f.read()), allow_pickle=False)
        return {k: data[k] for k in data.files}


class SizeCounter:
    """Voxels per segment of one level-0 block, bucketed by shard (called by the pyramid)."""

    def __init__(self, layer: str, spec: dict):
        self.root, self.buckets = cloudpath(layer), ShardBuckets(spec)

    def __call__(self, block_id: int, labels: np.ndarray) -> None:
        import fastremap

        ids, counts = fastremap.unique(labels, return_counts=True)
        keep = ids != 0
        ids, counts = ids[keep].astype(np.uint64), counts[keep].astype(np.int64)
        shards = self.buckets.of(ids)
        for shard in np.unique(shards).tolist():
            pick = shards == shard
            url = join(self.root, "objects", str(shard), f"sizes-{block_id}.npz")
            _save(url, {"ids": ids[pick], "counts": counts[pick]})


class _Gathered:
    """The pieces of one shard: sizes, the blocks each segment lies in, mesh/skeleton pieces."""

    def __init__(self):
        self.sizes: dict[int, int] = defaultdict(int)
        self.blocks: dict[int, list[int]] = defaultdict(list)
        self.meshes: dict[int, list] = defaultdict(list)
        self.skels: dict[int, list] = defaultdict(list)

    def read(self, folder: str) -> None:
        from pipeline.export.objects import _split

        fs, path = filesystem(folder)
        files = sorted(fs.ls(path, detail=False)) if fs.exists(path) else []
        for name in (f for f in files if f.endswith(".npz")):
            a = _load(name, fs)
            stem = name.rsplit("/", 1)[-1][: -len(".npz")]
            if stem.startswith("sizes-"):
                for seg, n in zip(a["ids"].tolist(), a["counts"].tolist(), strict=True):
                    self.sizes[seg] += n
                continue
            for seg in a["size_ids"].tolist():
                self.blocks[seg].append(int(stem))
            for seg, v, e, _ in _split(a, "mesh"):
                self.meshes[seg].append((v, e))
            for seg, v, e, r in _split(a, "skel"):
                self.skels[seg].append((v, e, r))


class ShardReduce:
    """The reduce task of one shard (a 1-D block). With ``touched`` (segment ids) it rebuilds only
    those segments and copies every other entry of the shard from its current file."""

    def __init__(self, layer, params, res, spec, only=None, touched=None):
        self.root, self.params, self.res, self.spec = cloudpath(layer), params, res, spec
        self.only, self.touched = only, touched

    def __call__(self, block: Block) -> None:
        shard = block.write_roi.begin[0]
        if self.only is not None and shard not in self.only:
            return
        got = _Gathered()
        got.read(join(self.root, "objects", str(shard)))
        ids = np.array(sorted(got.sizes), np.uint64)
        sizes = np.array([got.sizes[int(i)] for i in ids], np.int64)
        blocks = self._blocks(shard, ids, got)
        big = {int(i) for i, n in zip(ids, sizes, strict=True) if n >= self.params.min_size}
        if self.params.meshes:
            self._meshes(shard, big, got)
        if self.params.skeletons:
            self._skeletons(shard, big, got)
        ptr = np.cumsum([0] + [len(b) for b in blocks]).astype(np.int64)
        flat = np.concatenate(blocks).astype(np.int64) if blocks else np.zeros(0, np.int64)
        table = {"ids": ids, "sizes": sizes, "block_ptr": ptr, "blocks": flat}
        _save(join(self.root, "objects", "sizes", f"{shard}.npz"), table)

    def _blocks(self, shard: int, ids: np.ndarray, got: _Gathered) -> list[np.ndarray]:
        old = {}
        if self.touched is not None:
            fs, path = filesystem(join(self.root, "objects", "sizes", f"{shard}.npz"))
            if fs.exists(path):
                t = _load(path, fs)
                for i, seg in enumerate(t["ids"].tolist()):
                    old[seg] = t["blocks"][t["block_ptr"][i] : t["block_ptr"][i + 1]]
        touched = set() if self.touched is None else set(self.touched.tolist())
        out = []
        for seg in ids.tolist():
            mine = got.blocks.get(seg, []) if self.touched is None or seg in touched else None
            out.append(np.unique(np.asarray(mine if mine is not None else old.get(seg, []))))
        return out

    def _kept(self, folder: str, shard: int, big: set[int], with_offset: bool):
        """Entries of untouched segments copied from the shard's current file."""
        if self.touched is None:
            return {}, {}
        data, index = read_entries(join(self.root, folder), self.spec[folder], shard)
        touched = set(self.touched.tolist())
        entries, offsets = {}, {}
        for seg, where in index.items():
            if seg in touched or seg not in big:
                continue
            if with_offset:  # a mesh: fragments precede the manifest the index points to
                start = where[0] - _fragment_bytes(data[where[0] : where[1]])
                entries[seg], offsets[seg] = data[start : where[1]], where[1] - where[0]
            else:
                entries[seg] = entry_data(data, where, self.spec[folder])
        return entries, offsets

    def _meshes(self, shard: int, big: set[int], got: _Gathered) -> None:
        import zmesh

        entries, offsets = self._kept("mesh", shard, big, True)
        scale = np.array(self.res[::-1], np.float64)
        for seg in sorted(big & set(got.meshes)):
            pieces = [(v / scale, e) for v, e in got.meshes[seg]]
            if len(pieces) > 1:  # seams between blocks: one vertex each (1e-3 voxel)
                pieces = [weld(pieces, step=1e-3)]
            mesh = zmesh.Mesh(pieces[0][0], pieces[0][1], None, id=seg)
            entry = multires_entry(seg, mesh)
            if entry is not None:
                entries[seg], offsets[seg] = entry
        write_shard(join(self.root, "mesh"), self.spec["mesh"], shard, entries, offsets)

    def _skeletons(self, shard: int, big: set[int], got: _Gathered) -> None:
        entries, _ = self._kept("skeletons", shard, big, False)
        skeleton = skeleton_class()
        for seg in sorted(big & set(got.skels)):
            parts = [skeleton(v, e, radii=r, segid=seg) for v, e, r in got.skels[seg]]
            skel = skeleton.simple_merge(parts).consolidate() if len(parts) > 1 else parts[0]
            skel.id = seg
            skel.extra_attributes = [dict(a) for a in SKELETON_ATTRIBUTES]
            entries[seg] = skel.to_precomputed()
        write_shard(join(self.root, "skeletons"), self.spec["skeletons"], shard, entries)


def _fragment_bytes(manifest: bytes) -> int:
    """Bytes of Draco fragments before a multilod manifest (the sum of its fragment sizes)."""
    n = int(np.frombuffer(manifest[24:28], "<u4")[0])
    head = 28 + 4 * n + 12 * n
    per_lod = np.frombuffer(manifest[head : head + 4 * n], "<u4").astype(np.int64)
    pos, total = head + 4 * n, 0
    for k in range(n):
        pos += 12 * int(per_lod[k])
        total += int(np.frombuffer(manifest[pos : pos + 4 * per_lod[k]], "<u4").sum())
        pos += 4 * int(per_lod[k])
    return total
