"""Segment stage: fragment -> segment lookup tables at one or several thresholds.

A segmentation at threshold ``t`` is the connected components of the edges whose merge score is
below ``t``. The per-block score tables are streamed through an array union-find (edges of the
lower thresholds are kept: thresholds are processed in increasing order and each adds only the
edges between the previous threshold and its own). Every fragment gets a row, also those with no
edge; a segment's id is the smallest fragment id in it (stable across thresholds and reruns).

Tables: ``luts/t<threshold>/<partition>.parquet`` with columns fragment, segment. With petaseg's
id scheme a partition is the block that holds a fragment's seed, so relabelling a block reads the
partitions of its own and neighbouring blocks only; fragments from other tools get one
partition, ``all``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.io.tables import (
    block_table,
    iter_block_tables,
    lut_root,
    lut_table,
    read_graph_meta,
    table_exists,
    write_json,
    write_table,
)
from pipeline.seg.ids import id_blocks
from pipeline.seg.unionfind import StreamingUnionFind
from pipeline.stages.agglomerate import node_ids

# mean boundary; sweep several with --threshold and score them on a labelled crop
DEFAULT_THRESHOLD = 0.7


def run_segment(root: str, thresholds: Sequence[float]) -> list[dict[str, Any]]:
    """Write a lookup table per threshold under ``root``; return a summary per threshold."""
    meta = read_graph_meta(root)
    n_blocks = meta["num_blocks"]
    if not thresholds:
        raise InputError("give at least one threshold")
    outside = [t for t in thresholds if not 0.0 <= float(t) <= 1.0]
    if outside:
        raise InputError(
            f"merge threshold(s) {', '.join(f'{t:g}' for t in outside)} outside [0, 1]: merge "
            "scores lie in [0, 1] (0.7 is the default; sweep e.g. 0.5,0.6,0.7)"
        )
    if not table_exists(block_table(root, "agglomeration/scores", 0)):
        raise InputError(
            f"no merge scores under {root}: run `petaseg agglomerate` (or `petaseg segment`) first"
        )
    ids = node_ids(root, n_blocks)
    uf = StreamingUnionFind(len(ids))
    scheme = meta.get("scheme")
    out = []
    previous = -np.inf
    for t in sorted(float(x) for x in thresholds):
        for _, tab in iter_block_tables(root, "agglomeration/scores", n_blocks):
            pick = (tab["score"] >= previous) & (tab["score"] < t)
            if pick.any():
                uf.union(np.searchsorted(ids, tab["u"][pick]), np.searchsorted(ids, tab["v"][pick]))
        previous = t
        segment = ids[uf.labels()] if len(ids) else ids
        lut = lut_root(root, t)
        if scheme:
            part = id_blocks(ids, scheme["shape"], scheme["block_shape"])
            order = np.argsort(part, kind="stable")
            part_sorted = part[order]
            cuts = np.flatnonzero(np.diff(part_sorted)) + 1
            for chunk in np.split(order, cuts) if len(ids) else []:
                p = int(part[chunk[0]])
                write_table(lut_table(lut, p), {"fragment": ids[chunk], "segment": segment[chunk]})
        else:
            write_table(lut_table(lut, "all"), {"fragment": ids, "segment": segment})
        digest = hashlib.sha256(ids.tobytes() + segment.tobytes()).hexdigest()[:16]
        info = {
            "threshold": t,
            "digest": digest,
            "lut": lut,
            "fragments": int(len(ids)),
            "segments": int(len(np.unique(segment))),
            "partitioned": bool(scheme),
        }
        write_json(f"{lut}/meta.json", {**info, "scheme": scheme})
        out.append(info)
    return out
