"""One segment's mesh as a Neuroglancer ``multilod_draco`` entry: a manifest (chunk shape, grid
origin, levels of detail, fragment positions and sizes) preceded by its Draco-encoded fragments.

Level of detail 0 is the merged block meshes; each level above halves the triangle count (zmesh's
fast quadric simplification) and doubles the fragment size, up to one fragment for the whole
segment. Fragments are cut on the level's grid (``zmesh.chunk_mesh``), listed in Z-curve order,
and their vertices stored as integers in ``[0, 2**bits)`` relative to their grid cell, which the
Draco quantization keeps exact (origin 0, range ``2**bits - 1``). Vertices are in voxels of the
mesh's scale level; the mesh ``info`` transform turns them into nm.
"""

from __future__ import annotations

import math

import numpy as np

VERTEX_BITS = 16
MIN_CHUNK_VOX = 32  # the finest fragment is at least this large (voxels of the mesh level)
MAX_LODS = 4


def _morton(pos: np.ndarray) -> np.ndarray:
    """Z-curve order keys of integer (x, y, z) grid positions."""
    key = np.zeros(len(pos), np.uint64)
    bits = int(pos.max()).bit_length() if len(pos) else 0  # positions are small: few bits
    for bit in range(min(21, bits)):
        for axis in range(3):
            b = (pos[:, axis].astype(np.uint64) >> np.uint64(bit)) & np.uint64(1)
            key |= b << np.uint64(3 * bit + axis)
    return key


def lod_count(extent: np.ndarray, max_lods: int = MAX_LODS) -> int:
    """Levels of detail for a mesh of ``extent`` voxels: halve until the finest fragment would
    fall under ``MIN_CHUNK_VOX``."""
    doublings = int(math.floor(math.log2(max(float(np.max(extent)), 1.0) / MIN_CHUNK_VOX)))
    return max(1, min(max_lods, 1 + max(0, doublings)))


def _encode(vertices, faces, origin, cell, position) -> bytes:
    import DracoPy

    q = float(2**VERTEX_BITS - 1)
    stored = (vertices - origin) / cell - position
    stored = np.clip(np.rint(stored * q), 0, q)
    try:
        return DracoPy.encode(
            stored.astype(np.float32),
            faces.astype(np.uint32),
            quantization_bits=VERTEX_BITS,
            quantization_range=q,
            quantization_origin=(0.0, 0.0, 0.0),
            compression_level=5,
        )
    except DracoPy.EncodingFailedException:
        return b""


def _lod_fragments(mesh, origin, cell, single: bool) -> tuple[list, list[bytes]]:
    import zmesh

    if single:
        parts = {(0, 0, 0): mesh}
    else:
        parts = zmesh.chunk_mesh(mesh, tuple(cell), tuple(origin))
    keys = [k for k, m in parts.items() if len(m.faces)]
    if not keys:
        return [], []
    pos = np.array(keys, np.int64).reshape(-1, 3)
    order = np.argsort(_morton(np.maximum(pos, 0)), kind="stable")
    positions, blobs = [], []
    for i in order.tolist():
        m = parts[keys[i]]
        blob = _encode(m.vertices.astype(np.float64), m.faces, origin, cell, pos[i])
        if blob:
            positions.append(pos[i])
            blobs.append(blob)
    return positions, blobs


def multires_entry(segment: int, mesh, max_lods: int = MAX_LODS) -> tuple[bytes, int] | None:
    """(entry bytes, manifest length) of ``mesh`` (a ``zmesh.Mesh`` in voxels), or None when
    nothing is left to encode."""
    import zmesh
    from cloudvolume.datasource.precomputed.mesh.multilod import (
        MultiLevelPrecomputedMeshManifest,
    )

    if len(mesh.faces) == 0:
        return None
    lo = np.floor(mesh.vertices.min(axis=0)).astype(np.float64)
    extent = np.maximum(np.ceil(mesh.vertices.max(axis=0) - lo), 1.0)
    n = lod_count(extent, max_lods)
    chunk = np.ceil(extent / 2 ** (n - 1))
    lods, faces = [mesh], len(mesh.faces)
    for k in range(1, n):
        target = max(4, faces // 2**k)
        lods.append(zmesh.simplify_fqmr(lods[-1], target_count=target, preserve_border=k <= 2))
    positions, blobs = [], []
    for k, m in enumerate(lods):
        pos, enc = _lod_fragments(m, lo, chunk * 2**k, single=k == n - 1)
        positions.append(np.array(pos, np.uint32).reshape(-1, 3))
        blobs.append(enc)
    if not any(len(b) for b in blobs):
        return None
    manifest = MultiLevelPrecomputedMeshManifest(
        segment_id=segment,
        chunk_shape=chunk.astype(np.float32),
        grid_origin=lo.astype(np.float32),
        num_lods=n,
        lod_scales=[2**k for k in range(n)],
        vertex_offsets=[[0, 0, 0]] * n,
        num_fragments_per_lod=[len(b) for b in blobs],
        fragment_positions=positions,
        fragment_offsets=[len(x) for b in blobs for x in b],
    )
    head = manifest.to_binary()
    return b"".join(x for b in blobs for x in b) + head, len(head)
