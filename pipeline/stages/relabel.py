"""Relabel stage: apply a fragment -> segment lookup table blockwise, writing uint64 segments.

Each block maps the distinct fragment ids it holds through the table partitions they belong to
(with petaseg's id scheme: the block's own partition; otherwise the single ``all`` table), so a
worker loads one small table per block, not the whole lookup table.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import fastremap
import numpy as np

from pipeline.errors import InputError
from pipeline.io.tables import lut_table, read_json, read_table, threshold_name
from pipeline.io.volume import (
    create_volume,
    open_input,
    open_volume,
    output_shards,
    shard_chunks,
)
from pipeline.provenance import provenance
from pipeline.runner.blockwise import Block, RunReport, run_blockwise
from pipeline.runner.cache import cached
from pipeline.runner.tasks import volume_task
from pipeline.seg.ids import id_blocks

_LUT_CACHE_SIZE = 8


class LutCache:
    """The last few lookup-table partitions read by this worker (``all`` stays once read)."""

    def __init__(self) -> None:
        self.tables: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def get(self, url: str) -> tuple[np.ndarray, np.ndarray]:
        if url in self.tables:
            self.tables.move_to_end(url)
            return self.tables[url]
        try:
            t = read_table(url)
        except FileNotFoundError:
            raise InputError(
                f"lookup table partition {url} is missing: rerun the segment step"
            ) from None
        order = np.argsort(t["fragment"])
        entry = (t["fragment"][order].astype(np.uint64), t["segment"][order].astype(np.uint64))
        self.tables[url] = entry
        if len(self.tables) > _LUT_CACHE_SIZE:
            self.tables.popitem(last=False)
        return entry


def apply_lut(
    fragments: np.ndarray, keys: np.ndarray, values: np.ndarray, where: str = "block"
) -> np.ndarray:
    """Map fragment ids through a sorted table (fastremap); 0 stays 0; an id missing from the
    table is an error, never a silent pass-through."""
    uniq = fastremap.unique(fragments)
    uniq = uniq[uniq != 0]
    pos = np.minimum(np.searchsorted(keys, uniq), max(len(keys) - 1, 0))
    found = (keys[pos] == uniq) if len(keys) else np.zeros(len(uniq), bool)
    if not found.all():
        missing = uniq[~found][:5].tolist()
        raise InputError(
            f"{where}: fragment ids {missing} are not in the lookup table; the table was built "
            "from another fragments volume. Rerun graph, agglomerate and segment on these fragments"
        )
    mapping = dict(zip(uniq.tolist(), values[pos].tolist(), strict=True))
    mapping[0] = 0
    out = fastremap.remap(fragments, mapping, preserve_missing_labels=False)
    return np.asarray(out, dtype=np.uint64)


class RelabelBlock:
    def __init__(self, fragments_url: str, lut: str, output_url: str, scheme: dict | None):
        self.fragments_url, self.lut, self.output_url = fragments_url, lut, output_url
        self.scheme = scheme

    def __call__(self, block: Block) -> None:
        fvol = cached(f"vol:r:{self.fragments_url}", lambda: open_volume(self.fragments_url))
        out = cached(f"vol:a:{self.output_url}", lambda: open_volume(self.output_url, "a"))
        luts = cached("relabel:luts", LutCache)
        frag = fvol.read(block.write_roi)
        if self.scheme:
            ids = np.unique(frag)
            ids = ids[ids != 0]
            parts = np.unique(id_blocks(ids, self.scheme["shape"], self.scheme["block_shape"]))
            tables = [luts.get(lut_table(self.lut, p)) for p in parts.tolist()]
            if len(tables) == 1:
                keys, values = tables[0]
            elif tables:
                keys = np.concatenate([t[0] for t in tables])
                values = np.concatenate([t[1] for t in tables])
                order = np.argsort(keys)
                keys, values = keys[order], values[order]
            else:
                keys = values = np.zeros(0, np.uint64)
        else:
            keys, values = luts.get(lut_table(self.lut, "all"))
        out.write(block.write_roi, apply_lut(frag, keys, values, f"block {block.block_id}"))


SHARD_BLOCK = 256  # voxels a side (at least) of a relabel block, and shard, at scale


def segmentation_layout(
    block: Sequence[int], shape: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...] | None]:
    """(block, chunks, shards) of a segmentation: chunks of the fragments' block, unsharded;
    at scale (``output_shards``) blocks of whole fragment blocks of at least ``SHARD_BLOCK``
    voxels a side (within the volume), each one shard of smaller chunks."""
    block = tuple(int(b) for b in block)
    grown = tuple(
        b * max(1, min(SHARD_BLOCK // b, -(-int(s) // b)))
        for b, s in zip(block, shape, strict=True)
    )
    chunks = shard_chunks(grown)
    shards = output_shards(shape, grown, chunks)
    return (grown, chunks, shards) if shards else (block, block, None)


def run_relabel(
    fragments_url: str,
    lut: str,
    output_url: str,
    client=None,
    progress: bool = True,
) -> RunReport:
    """Write the segmentation ``output_url`` (uint64 Zarr) from fragments and a lookup table."""
    try:
        meta = read_json(f"{lut}/meta.json")
    except FileNotFoundError:
        raise InputError(f"no lookup table at {lut}: run `petaseg segment` first") from None
    fvol = open_input(fragments_url, "relabel")
    scheme = fvol.attrs.get("petaseg_fragments") or {}
    if (meta.get("scheme") or None) != (scheme or None):
        raise InputError(
            f"lookup table {lut} was built for fragments with id scheme {meta.get('scheme')}, "
            f"but {fragments_url} has {scheme or None}; relabel the fragments it was built from"
        )
    block, chunks, shards = segmentation_layout(
        scheme.get("block_shape") or [min(c, 128) for c in fvol.chunks], fvol.shape
    )
    out = create_volume(
        output_url,
        fvol.shape,
        np.uint64,
        fvol.voxel_size,
        fvol.offset,
        chunks=chunks,
        shards=shards,
        labels=True,
        attrs={
            "petaseg": provenance(
                "relabel",
                {"fragments": fragments_url, "lut": lut, "threshold": meta.get("threshold")},
            )
        },
        exist_ok=True,
        sources=[fragments_url, lut],
    )
    threshold = meta.get("threshold")
    # one progress line (and marker folder) per threshold: "relabel-t0.5", "relabel-t0.7"
    name = "relabel" if threshold is None else f"relabel-{threshold_name(threshold)}"
    task = volume_task(
        name,
        fvol,
        out,
        block,
        RelabelBlock(fvol.url, lut, out.url, scheme or None),
        {"fragments": fragments_url, "lut": lut, "digest": meta.get("digest")},
    )
    return run_blockwise(task, client=client, progress=progress)


def output_for(output_url: str, threshold: float, several: bool) -> str:
    """The segmentation volume of a threshold: ``output_url`` itself, or with ``_t<T>`` appended
    when several thresholds are written."""
    return f"{output_url.rstrip('/')}_{threshold_name(threshold)}" if several else output_url


def relabel_luts(
    fragments_url: str,
    luts: Sequence[dict[str, Any]],
    output_url: str,
    client=None,
    progress: bool = True,
    corrected: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One segmentation per lookup table of the segment stage (``output_url``, or
    ``<output_url>_t<T>`` for several thresholds), plus ``<output_url>_corrected`` from the
    corrected lookup table when given; returns what was written, one record per volume."""
    several = len(luts) > 1
    jobs = [(output_for(output_url, info["threshold"], several), info, False) for info in luts]
    if corrected is not None:
        jobs.append((f"{output_url.rstrip('/')}_corrected", corrected, True))
    written = []
    for target, info, is_corrected in jobs:
        run_relabel(fragments_url, info["lut"], target, client, progress)
        written.append(
            {
                "threshold": info["threshold"],
                "lut": info["lut"],
                "corrected": is_corrected,
                "segmentation": target,
                "segments": info.get("segments"),
                "fragments": info.get("fragments"),
            }
        )
    return written
