"""Fragments stage: a seeded watershed per block, with globally unique uint64 ids.

Methods: ``watershed`` floods the boundary map (for affinities, ``1 - mean`` of the
nearest-neighbour channels); ``affinity_watershed`` grows the same seeds across the faces in
order of decreasing affinity (``pipeline.seg.affinity_watershed``). Both follow the rules below.

Context: the watershed (distance transform, seeds, flooding, small-fragment merging) runs on the
block's read ROI (write ROI grown by ``context`` voxels, clipped at the volume edge), so seeds and
basins near the block faces are computed from the same data as in a whole-volume run. The result
is cropped to the write ROI and written.

Ids: ``id = 1 + global C-order index of the first voxel of the fragment's seed`` (see
``seg/ids.py``). Unique by construction, and block-independent: a basin crossing a face keeps its
id on both sides whenever both blocks found its seed (seeds come from the smoothed distance
transform, which the context makes the same in both blocks), so fragments are not cut at block
faces. Where the two blocks disagree (too little context) the basin is cut into two fragments
and the face contact in the region graph joins them again in agglomeration. A fragment may
therefore span several blocks, and a write ROI may hold two pieces of one basin that are joined
outside it. The id scheme, grid and context are stored in the fragments' attrs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from distributed import Client

from pipeline.errors import InputError
from pipeline.geometry import Roi, in_nm
from pipeline.io.affinities import has_affinities, nn_offsets, read_affinities
from pipeline.io.boundary import read_boundary
from pipeline.io.urls import refuse_overwriting
from pipeline.io.volume import (
    Volume,
    create_volume,
    exists,
    open_input,
    open_volume,
    output_shards,
)
from pipeline.provenance import provenance
from pipeline.runner.blockwise import Block, RunReport, run_blockwise
from pipeline.runner.cache import cached
from pipeline.runner.tasks import volume_task
from pipeline.seg.affinity_watershed import affinity_basins
from pipeline.seg.contacts import face_channels
from pipeline.seg.ids import ids_from_local
from pipeline.seg.scratch import scratch
from pipeline.seg.watershed import FragmentParams, fragment_basins

DEFAULT_BLOCK = (128, 128, 128)
DEFAULT_CONTEXT = (16, 16, 16)
HEAVY_BLOCK = 64**3  # voxels
METHODS = ("watershed", "affinity_watershed")
MAX_CHUNK = 64  # voxels, a side of the fragments' chunks


def fragment_chunks(block: Sequence[int]) -> tuple[int, ...]:
    """Chunks of the fragments volume: the block cut into chunks of at most 64 voxels a side
    where the block's side has such a divisor (16 or more). The graph stage reads each block
    grown by one voxel, which decodes the neighbouring chunks whole: with 64^3 chunks inside
    128^3 blocks that is 27 chunks of 2 MiB per block instead of 8 of 16 MiB."""
    out = []
    for b in block:
        divisors = [d for d in range(min(b, MAX_CHUNK), 15, -1) if b % d == 0]
        out.append(divisors[0] if b > MAX_CHUNK and divisors else b)
    return tuple(out)


def blocks_per_task(block: Sequence[int]) -> int | None:
    """One block per Dask task when blocks are heavy (64^3 voxels or more: 0.1 s and up, so the
    task overhead is small and every worker gets work even when there are few blocks); the
    runner's grouping for lighter ones."""
    return 1 if math.prod(block) >= HEAVY_BLOCK else None


def check_boundary_volume(vol: Volume) -> None:
    """Refuse boundary maps that cannot be scaled to [0, 1] (early, in the client)."""
    if any(s == 0 for s in vol.shape):
        raise InputError(f"boundary map {vol.url} is empty (shape {vol.shape}); nothing to segment")
    if vol.channels is not None and vol.channels not in (1,) and vol.channels < 3:
        raise InputError(
            f"boundary map {vol.url} has {vol.channels} channels: give a boundary map (no or one "
            "channel) or nearest-neighbour affinities (3 or more channels, z, y, x first)"
        )
    if vol.dtype.kind not in "fub":
        raise InputError(
            f"boundary map {vol.url} has dtype {vol.dtype}: use float in [0, 1], uint8 (0-255) "
            "or uint16 (0-65535)"
        )
    if vol.dtype.kind == "u" and vol.dtype.itemsize > 2:
        raise InputError(
            f"boundary map {vol.url} has dtype {vol.dtype}: an integer boundary map must be uint8 "
            "(0-255) or uint16 (0-65535); a label volume is not a boundary map"
        )


def affinity_faces(vol: Volume, params: FragmentParams) -> list[list[int]]:
    """(channel, shift) per axis z, y, x of the affinity watershed's faces, checked early."""
    if not has_affinities(vol):
        raise InputError(
            f"method affinity_watershed needs affinities (3+ channels, nearest-neighbour z, y, x "
            f"first), but {vol.url} has {vol.channels or 1} channel(s); use method watershed for "
            "a boundary map"
        )
    if params.mode != "3d":
        raise InputError("method affinity_watershed works in 3D only: use mode '3d'")
    try:
        return [list(f) for f in face_channels(nn_offsets(vol))]
    except ValueError as err:
        raise InputError(f"{vol.url}: {err}") from None


class FragmentsBlock:
    """Watershed on the read ROI, crop to the write ROI, ids from seed voxels."""

    def __init__(
        self,
        boundaries_url: str,
        fragments_url: str,
        params: dict[str, Any],
        faces: list[list[int]] | None = None,
    ):
        self.boundaries_url, self.fragments_url = boundaries_url, fragments_url
        self.params = params
        self.faces = faces  # (channel, shift) per axis: the affinity watershed; None: boundary

    def __call__(self, block: Block) -> None:
        bvol = cached(f"vol:r:{self.boundaries_url}", lambda: open_volume(self.boundaries_url))
        fvol = cached(f"vol:a:{self.fragments_url}", lambda: open_volume(self.fragments_url, "a"))
        params = FragmentParams(**self.params)
        if self.faces is None:
            boundary = read_boundary(bvol, block.read_roi)
            basins = fragment_basins(boundary, params, anisotropy=bvol.voxel_size)
            del boundary
        else:
            affs = read_affinities(bvol, block.read_roi)
            faces = [tuple(f) for f in self.faces]
            basins = affinity_basins(affs, faces, params, anisotropy=bvol.voxel_size)
            del affs
        read_vox = block.read_roi.shift(tuple(-o for o in bvol.offset)).to_voxels(bvol.voxel_size)
        write_vox = block.write_roi.shift(tuple(-o for o in bvol.offset)).to_voxels(bvol.voxel_size)
        inner = tuple(
            slice(w - r, w - r + s)
            for w, r, s in zip(write_vox.begin, read_vox.begin, write_vox.shape, strict=True)
        )
        rep = basins.rep
        ids = np.zeros(len(rep), np.uint64)
        if len(rep) > 1:
            ids[1:] = ids_from_local(rep[1:], basins.labels.shape, read_vox.begin, bvol.shape)
        # a merged small fragment takes the id of the fragment it joined
        lut = ids if basins.roots is None else ids[basins.roots]
        crop = basins.labels[inner]
        out = np.take(lut, crop, out=scratch("fragment-ids", crop.shape, np.uint64), mode="clip")
        fvol.write(block.write_roi, out)


def id_scheme(fragments: Volume) -> dict[str, Any] | None:
    """The id scheme stored by this stage in a fragments volume (None for foreign fragments)."""
    return (fragments.attrs.get("petaseg_fragments") or None) if fragments else None


def create_fragments(
    fragments_url: str,
    source: Volume,
    block: Sequence[int],
    scheme: dict[str, Any],
    record: dict[str, Any],
) -> Volume:
    """The uint64 fragments volume of ``source`` (created, or reopened to resume when it holds
    the same id ``scheme``), chunked for the graph stage and sharded by block at scale; never
    over the source. ``record``: the parameters kept in its provenance."""
    refuse_overwriting([fragments_url], [source.url], "petaseg fragments")
    if exists(fragments_url):
        have = id_scheme(open_volume(fragments_url))
        if have != scheme:
            raise InputError(
                f"{fragments_url} already holds fragments of another block grid, method or tool "
                f"(id scheme {have}, this run: {scheme}); remove it or write to another URL"
            )
    chunks = fragment_chunks(block)
    return create_volume(
        fragments_url,
        source.shape,
        np.uint64,
        source.voxel_size,
        source.offset,
        chunks=chunks,
        shards=output_shards(source.shape, block, chunks),
        labels=True,
        attrs={"petaseg": provenance("fragments", record), "petaseg_fragments": scheme},
        exist_ok=True,
        sources=[source.url],
    )


def run_fragments(
    boundaries_url: str,
    fragments_url: str,
    params: FragmentParams | None = None,
    block_shape: Sequence[int] | None = None,
    context: Sequence[int] | None = None,
    client: Client | None = None,
    progress: bool = True,
    method: str = "watershed",
) -> RunReport:
    """Write uint64 fragments of a boundary map (resumable: finished blocks are skipped).

    ``method``: "watershed" (of the boundary map; of ``1 - mean`` of nearest-neighbour
    affinities) or "affinity_watershed" (seeded watershed over the faces' affinities,
    ``pipeline.seg.affinity_watershed``; needs affinities)."""
    params = params or FragmentParams()
    if params.mode not in ("2d", "3d"):
        raise InputError(f"fragment mode must be '2d' or '3d', got {params.mode!r}")
    if method not in METHODS:
        raise InputError(f"fragments method {method!r}: use one of {', '.join(METHODS)}")
    bvol = open_input(boundaries_url, "segment")
    check_boundary_volume(bvol)
    faces = affinity_faces(bvol, params) if method == "affinity_watershed" else None
    block = tuple(min(b, s) for b, s in zip(block_shape or DEFAULT_BLOCK, bvol.shape, strict=True))
    ctx = tuple(context if context is not None else DEFAULT_CONTEXT)
    if params.mode == "2d":
        ctx = (0, *ctx[1:])
    # one quick look at the first chunk in the client: a bad range fails here, not in a worker
    look = tuple(min(b, c) for b, c in zip(block, bvol.chunks or block, strict=True))
    probe = Roi(bvol.offset, in_nm(look, bvol.voxel_size))
    read_boundary(bvol, probe)
    grid_shape = [math.ceil(s / b) for s, b in zip(bvol.shape, block, strict=True)]
    scheme = {
        "ids": "seed-voxel",
        "id_formula": "1 + C-order index of the seed's first voxel in the volume",
        "shape": list(bvol.shape),
        "block_shape": list(block),
        "grid_shape": grid_shape,
        "context": list(ctx),
    }
    if faces is not None:  # watershed runs keep their scheme and parameters (and so resume)
        scheme["method"] = method
    record = {"boundaries": boundaries_url, **params.as_dict(), "context": list(ctx)}
    if faces is not None:
        record.update({"method": method, "face_channels": faces})
    fvol = create_fragments(fragments_url, bvol, block, scheme, record)
    task = volume_task(
        "fragments",
        bvol,
        fvol,
        block,
        FragmentsBlock(boundaries_url, fvol.url, params.as_dict(), faces),
        {"boundaries": boundaries_url, **params.as_dict(), "context": list(ctx), **scheme},
        context=ctx,
        blocks_per_task=blocks_per_task(block),
    )
    return run_blockwise(task, client=client, progress=progress)
