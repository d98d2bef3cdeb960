"""Region graph stage: per block, the fragment pairs that touch inside the block or across its
+z/+y/+x faces, with boundary statistics, as one Parquet table per block.

A block reads its write ROI grown by one voxel on the + side: face pairs (x, x + e_d) are taken
for x in the write ROI only, so every face of the volume is counted by exactly one block and a
pair of fragments in two blocks gets its contacts from the block on the - side. Per edge:
``count`` (contact faces), ``sum`` of boundary values (mean = sum / count) and a ``hist`` of them
on [0, 1] (for quantile scoring). Per fragment: its voxel count in the block.

Face values: from a boundary map, the larger boundary value of the face's two voxels; from
affinities (3+ channels, the predict stage's output), ``1 - the affinity of the face`` itself
(``faces: affinity``, the default for affinities), so an edge's statistics are those of the
affinities across the contact; ``faces: boundary`` keeps the boundary map ``1 - mean`` of the
nearest-neighbour affinities, as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from distributed import Client

from pipeline.errors import InputError
from pipeline.io.affinities import has_affinities, nn_offsets, read_affinities
from pipeline.io.boundary import read_boundary
from pipeline.io.tables import block_table, write_json, write_table
from pipeline.io.urls import refuse_overwriting
from pipeline.io.volume import open_input, open_volume
from pipeline.runner.blockwise import Block, RunReport, run_blockwise
from pipeline.runner.cache import cached
from pipeline.runner.tasks import grid_task
from pipeline.seg.contacts import block_contacts, face_channels
from pipeline.seg.ids import ids_valid
from pipeline.stages.fragments import DEFAULT_BLOCK, blocks_per_task, id_scheme

DEFAULT_BINS = 32


class GraphBlock:
    def __init__(
        self,
        fragments_url: str,
        boundaries_url: str,
        root: str,
        nbins: int,
        scheme: dict[str, Any] | None,
        faces: list[list[int]] | None = None,
    ):
        self.fragments_url, self.boundaries_url = fragments_url, boundaries_url
        self.root, self.nbins, self.scheme = root, nbins, scheme
        self.faces = faces  # (channel, shift) per axis z, y, x: affinity faces; None: boundary

    def __call__(self, block: Block) -> None:
        fvol = cached(f"vol:r:{self.fragments_url}", lambda: open_volume(self.fragments_url))
        bvol = cached(f"vol:r:{self.boundaries_url}", lambda: open_volume(self.boundaries_url))
        vs = fvol.voxel_size
        ext = block.write_roi.grow((0, 0, 0), vs).intersect(fvol.roi)
        frag = fvol.read(ext)
        owned = tuple(s // v for s, v in zip(block.write_roi.shape, vs, strict=True))
        if self.faces is None:
            nodes, edges = block_contacts(frag, read_boundary(bvol, ext), self.nbins, owned)
        else:
            faces = [tuple(f) for f in self.faces]
            nodes, edges = block_contacts(
                frag, read_affinities(bvol, ext), self.nbins, owned, faces
            )
        ids, sizes = nodes["id"], nodes["size"]
        if ids.size and ids[0] == 0:
            ids, sizes = ids[1:], sizes[1:]
        if self.scheme and ids.size:
            self.check_ids(ids, block, vs, fvol.offset)
        keep = edges["u"] != 0
        edges = {k: v[keep] for k, v in edges.items()}
        write_table(block_table(self.root, "graph/edges", block.block_id), edges)
        write_table(
            block_table(self.root, "graph/nodes", block.block_id),
            {"id": ids.astype(np.uint64), "size": sizes.astype(np.int64)},
        )

    def check_ids(self, ids: np.ndarray, block: Block, vs, offset) -> None:
        """Every id of a block must come from a seed the block's fragments run could see (its
        write ROI grown by the fragments' context); others are collisions with foreign ids."""
        wv = block.write_roi.shift(tuple(-o for o in offset)).to_voxels(vs)
        ctx = self.scheme["context"]
        begin = [b - c for b, c in zip(wv.begin, ctx, strict=True)]
        end = [e + c for e, c in zip(wv.end, ctx, strict=True)]
        ok = ids_valid(ids, self.scheme["shape"], begin, end)
        if not ok.all():
            raise InputError(
                f"fragment id collision: block {block.block_id} of {self.fragments_url} holds "
                f"id {int(ids[~ok][0])}, whose seed lies outside the block's read ROI; the "
                "fragments were overwritten by another run or tool. Recompute them into a "
                "fresh output"
            )


def graph_grid(fragments_url: str, block_shape: Sequence[int] | None = None) -> dict[str, Any]:
    """The block grid of the graph: that of the fragments when they carry petaseg's id scheme
    (so an id's block is known), else ``block_shape`` (voxels) or the default."""
    fvol = open_input(fragments_url, "build a region graph of")
    if fvol.dtype.kind not in "ui":
        raise InputError(f"fragments {fragments_url} have dtype {fvol.dtype}; expected integers")
    scheme = id_scheme(fvol)
    if scheme:
        block = tuple(scheme["block_shape"])
    else:
        block = tuple(
            min(b, s) for b, s in zip(block_shape or DEFAULT_BLOCK, fvol.shape, strict=True)
        )
    grid_shape = [math.ceil(s / b) for s, b in zip(fvol.shape, block, strict=True)]
    return {
        "fragments": fvol.url,
        "fragments_params": (fvol.attrs.get("petaseg") or {}).get("params"),
        "shape": list(fvol.shape),
        "voxel_size": list(fvol.voxel_size),
        "offset": list(fvol.offset),
        "block_shape": list(block),
        "grid_shape": grid_shape,
        "num_blocks": math.prod(grid_shape),
        "scheme": scheme or None,
    }


def face_table(vol, faces: str) -> list[list[int]] | None:
    """(channel, shift) per axis z, y, x of the faces' affinities, or None for boundary faces."""
    if faces not in ("auto", "affinity", "boundary"):
        raise InputError(f"graph faces {faces!r}: use 'auto', 'affinity' or 'boundary'")
    if faces == "boundary" or (faces == "auto" and not has_affinities(vol)):
        return None
    if not has_affinities(vol):
        raise InputError(
            f"faces 'affinity' need affinities, but {vol.url} has {vol.channels or 1} channel(s); "
            "give a predict output of an affinity model or use faces 'boundary'"
        )
    try:
        return [list(f) for f in face_channels(nn_offsets(vol))]
    except ValueError as err:
        raise InputError(
            f"{vol.url}: {err}; affinity faces need the offsets -e_d or +e_d of z, y and x"
        ) from None


def run_graph(
    fragments_url: str,
    boundaries_url: str,
    root: str,
    nbins: int = DEFAULT_BINS,
    block_shape: Sequence[int] | None = None,
    client: Client | None = None,
    progress: bool = True,
    faces: str = "auto",
) -> RunReport:
    """Write the region graph tables of ``fragments_url`` under ``root`` (resumable).

    ``faces``: "affinity" (1 - the affinity of each face; needs affinities), "boundary" (the
    larger boundary value of the face's voxels) or "auto" (affinity for affinities)."""
    refuse_overwriting([root], [fragments_url, boundaries_url], "petaseg graph (tables)")
    meta = graph_grid(fragments_url, block_shape)
    bvol = open_volume(boundaries_url)
    have = (list(bvol.shape), list(bvol.voxel_size), list(bvol.offset))
    want = (meta["shape"], meta["voxel_size"], meta["offset"])
    if have != want:
        raise InputError(
            f"boundary map {boundaries_url} (shape, voxel size, offset {have}) does not match "
            f"fragments {fragments_url} ({want}); use the boundary map the fragments came from"
        )
    if not 1 <= nbins <= 1024:
        raise InputError(f"histogram bins must be 1..1024, got {nbins}")
    channels = face_table(bvol, faces)
    meta.update({"boundaries": boundaries_url, "nbins": nbins})
    if channels is not None:  # boundary-map runs keep their parameters (and so resume)
        meta.update({"faces": "affinity", "face_channels": channels})
    write_json(f"{root}/graph/meta.json", meta)
    task = grid_task(
        "graph",
        meta,
        GraphBlock(meta["fragments"], boundaries_url, root, nbins, meta["scheme"], channels),
        f"{root}/graph",
        meta,
        blocks_per_task=blocks_per_task(meta["block_shape"]),
    )
    return run_blockwise(task, client=client, progress=progress)
