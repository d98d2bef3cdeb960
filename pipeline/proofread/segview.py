"""The fragments seen through an edit log's lookup table, served to Neuroglancer as it is asked
for: a chunk is read from the fragments volume and mapped with the table of the shown version
when the viewer requests it, and a segment's mesh is made (zmesh) from its fragments inside
their bounding box when the viewer requests that mesh. Nothing is rewritten on disk, nothing in
memory is the size of the volume, and a new version shows as soon as the table is swapped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from pipeline.geometry import Roi
from pipeline.io.base import Volume
from pipeline.lut import Lut
from pipeline.seg.ids import id_coords

MESH_CACHE_BYTES = 512 * 2**20  # fragment meshes kept in memory, at most


class SegmentArray:
    """An array-like (z, y, x, uint64) of segment ids: the fragments volume read in the asked
    box and mapped with ``lut`` (swapped whole by ``set_lut``; readers see one table or the
    next, never a mix)."""

    def __init__(self, fragments: Volume, lut: Lut):
        self.fragments = fragments
        self.lut = lut
        self.shape = tuple(int(s) for s in fragments.shape)
        self.dtype = np.dtype(np.uint64)
        self.ndim = 3

    def set_lut(self, lut: Lut) -> None:
        self.lut = lut

    def __getitem__(self, key: Any) -> np.ndarray:
        return map_ids(np.asarray(self.fragments[key]), self.lut)


def map_ids(fragments: np.ndarray, lut: Lut) -> np.ndarray:
    """Segment id of every voxel (0 stays 0; fragments the table does not name keep their id):
    the few ids of a chunk looked up once, then remapped by fastremap."""
    import fastremap

    ids = fastremap.unique(fragments)
    mapping = dict(zip(ids.tolist(), lut.lookup(ids).tolist(), strict=True))
    out = fastremap.remap(fragments, mapping, preserve_missing_labels=True)
    return np.asarray(out, np.uint64)


def segment_box(frags: np.ndarray, vol: Volume) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(begin, end) in voxels of a box that holds every voxel of these fragments: with
    petaseg's fragment ids, the blocks of their seeds grown by one block (a fragment never
    reaches past the neighbours of its seed's block); otherwise the whole volume."""
    shape = tuple(int(s) for s in vol.shape)
    scheme = vol.attrs.get("petaseg_fragments") if hasattr(vol, "attrs") else None
    if not scheme or len(frags) == 0:
        return (0, 0, 0), shape
    block = [int(b) for b in scheme["block_shape"]]
    seeds = np.stack(id_coords(frags, scheme["shape"]), axis=1)
    low = (seeds.min(0) // block - 1) * block
    high = (seeds.max(0) // block + 2) * block
    begin = tuple(int(max(0, v)) for v in low)
    end = tuple(int(min(s, v)) for s, v in zip(shape, high, strict=True))
    return begin, end


def encode_mesh(vertices_m: np.ndarray, faces: np.ndarray) -> bytes:
    """Neuroglancer's mesh format for a LocalVolume: vertex count (uint32), vertices (float32,
    in metres along the volume's axes), then triangle indices (uint32)."""
    v = np.ascontiguousarray(vertices_m, np.float32)
    return (
        np.uint32(len(v)).tobytes() + v.tobytes() + np.ascontiguousarray(faces, np.uint32).tobytes()
    )


class SegmentMeshes:
    """Meshes of segments, made of their fragments' meshes: each fragment is meshed once (all
    the missing fragments of a segment in one zmesh pass over their box) and kept, so after a
    merge or a split the edited segments' meshes are joined from kept pieces in milliseconds.
    The kept meshes are bounded (``MESH_CACHE_BYTES``; the least recently used go first)."""

    def __init__(self, array: SegmentArray):
        self.array = array
        self._pieces: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def mesh(self, segment: int) -> bytes | None:
        lut = self.array.lut
        frags = lut.fragment[lut.segment == np.uint64(segment)]
        if len(frags) == 0:
            frags = np.array([segment], np.uint64)  # a fragment no table names is itself
        with self._lock:
            missing = np.array([f for f in frags.tolist() if f not in self._pieces], np.uint64)
        if len(missing):
            self._keep(fragment_meshes(self.array.fragments, missing))
        with self._lock:
            pieces = [self._pieces[f] for f in frags.tolist() if f in self._pieces]
            for f in frags.tolist():
                if f in self._pieces:
                    self._pieces.move_to_end(f)
        pieces = [p for p in pieces if len(p[0])]
        if not pieces:
            return None
        return encode_mesh(*join_meshes(pieces))

    def _keep(self, meshes: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        with self._lock:
            for f, piece in meshes.items():
                self._pieces[f] = piece
                self._bytes += piece[0].nbytes + piece[1].nbytes
            while self._bytes > MESH_CACHE_BYTES and len(self._pieces) > len(meshes):
                _, (v, t) = self._pieces.popitem(last=False)
                self._bytes -= v.nbytes + t.nbytes


def join_meshes(pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One mesh of several (vertices, faces): faces renumbered onto the joined vertices."""
    offsets = np.cumsum([0] + [len(v) for v, _ in pieces[:-1]])
    vertices = np.concatenate([v for v, _ in pieces])
    faces = np.concatenate([t + o for (_, t), o in zip(pieces, offsets, strict=True)])
    return vertices, faces


def fragment_meshes(vol: Volume, frags: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The surface of each fragment (zmesh marching cubes, simplified; vertices in metres along
    the volume's axes from its first voxel, float32), in one pass over the box that holds them;
    a fragment without voxels gets an empty mesh."""
    import zmesh

    begin, end = segment_box(frags, vol)
    vs = np.asarray(vol.voxel_size, np.float64)
    roi = Roi(
        tuple(o + b * v for o, b, v in zip(vol.offset, begin, vs, strict=True)),
        tuple((e - b) * v for b, e, v in zip(begin, end, vs, strict=True)),
    )
    labels = vol.read(roi)
    labels = np.where(np.isin(labels, frags), labels, 0).astype(np.uint64)
    mesher = zmesh.Mesher(tuple(float(v) for v in vs))
    mesher.mesh(labels)
    found = set(int(i) for i in mesher.ids())
    out = {}
    empty = (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32))
    for f in frags.tolist():
        if f not in found:
            out[f] = empty
            continue
        m = mesher.get(f, normals=False, reduction_factor=10, max_error=float(vs.max()))
        v = ((m.vertices + np.asarray(begin) * vs) * 1e-9).astype(np.float32)
        out[f] = (v, np.asarray(m.faces, np.uint32))
    mesher.clear()
    return out


def fragments_mesh(vol: Volume, frags: np.ndarray) -> bytes | None:
    """The surface of the union of ``frags`` (joined fragment meshes), or None without voxels."""
    pieces = [p for p in fragment_meshes(vol, np.asarray(frags, np.uint64)).values() if len(p[0])]
    return encode_mesh(*join_meshes(pieces)) if pieces else None
