"""The fragments seen through an edit log's lookup table, served to Neuroglancer as it is asked
for: a chunk is read from the fragments volume and mapped with the table of the shown version
when the viewer requests it, and a segment's mesh is made (zmesh) from its fragments inside
their bounding box when the viewer requests that mesh. Nothing is rewritten on disk, nothing in
memory is the size of the volume, and a new version shows as soon as the table is swapped.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from pipeline.geometry import Roi
from pipeline.io.base import Volume
from pipeline.lut import Lut
from pipeline.seg.ids import id_coords

MESH_CACHE = (
    512  # meshes kept (keyed by the segment's fragments, so an edit never hits a stale one)
)


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
    """Segment id of every voxel (0 stays 0; fragments the table does not name keep their id)."""
    ids, inverse = np.unique(fragments, return_inverse=True)
    return lut.lookup(ids)[inverse].reshape(fragments.shape).astype(np.uint64, copy=False)


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
    """Meshes of segments made from their fragments on request, cached by fragment set."""

    def __init__(self, array: SegmentArray):
        self.array = array
        self._cache: OrderedDict[str, bytes | None] = OrderedDict()
        self._lock = threading.Lock()

    def mesh(self, segment: int) -> bytes | None:
        lut = self.array.lut
        frags = lut.fragment[lut.segment == np.uint64(segment)]
        if len(frags) == 0:
            frags = np.array([segment], np.uint64)  # a fragment no table names is itself
        key = hashlib.sha1(frags.tobytes()).hexdigest()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        data = fragments_mesh(self.array.fragments, frags)
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > MESH_CACHE:
                self._cache.popitem(last=False)
        return data


def fragments_mesh(vol: Volume, frags: np.ndarray) -> bytes | None:
    """The surface (zmesh marching cubes, simplified) of the union of ``frags``, or None when
    they have no voxel."""
    import zmesh

    begin, end = segment_box(frags, vol)
    vs = np.asarray(vol.voxel_size, np.float64)
    roi = Roi(
        tuple(o + b * v for o, b, v in zip(vol.offset, begin, vs, strict=True)),
        tuple((e - b) * v for b, e, v in zip(begin, end, vs, strict=True)),
    )
    mask = np.isin(vol.read(roi), frags).astype(np.uint8)
    if not mask.any():
        return None
    mesher = zmesh.Mesher(tuple(float(v) for v in vs))
    mesher.mesh(mask)
    m = mesher.get(1, normals=False, reduction_factor=10, max_error=float(vs.max()))
    mesher.clear()
    vertices = (m.vertices + np.asarray(begin) * vs) * 1e-9
    return encode_mesh(vertices, m.faces)
