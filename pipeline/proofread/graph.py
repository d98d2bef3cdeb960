"""A segment's fragment graph (from the region graph tables) and the minimum cut that splits it.

Edge capacity is how strongly the region graph says two fragments belong together:
``count * (1 - mean boundary)^2`` (contact area times squared affinity), so the cut prefers few,
small contacts across strong membrane. With petaseg's fragment id scheme only the edge tables of
the blocks around the segment's seeds are read (a fragment never reaches past the neighbours of
its seed's block); fragments of other tools make the whole graph scanned once per split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from pipeline.errors import InputError
from pipeline.io.tables import block_table, read_json, read_table
from pipeline.seg.ids import id_blocks
from pipeline.seg.rag import reduce_edges

EPS = 1e-6


def edge_capacity(count: np.ndarray, total: np.ndarray) -> np.ndarray:
    mean = np.asarray(total, np.float64) / np.maximum(np.asarray(count, np.float64), 1.0)
    return np.asarray(count, np.float64) * np.clip(1.0 - mean, 0.0, 1.0) ** 2 + EPS


def _blocks_around(ids: np.ndarray, meta: dict) -> Iterable[int]:
    """Block ids of the seeds of ``ids`` and their 26 neighbours (petaseg id scheme)."""
    scheme = meta["scheme"]
    grid = [int(g) for g in meta["grid_shape"]]
    own = np.unique(id_blocks(ids, scheme["shape"], scheme["block_shape"]))
    index = np.stack(np.unravel_index(own, grid), axis=1)
    out = set()
    for d in np.stack(np.meshgrid(*[[-1, 0, 1]] * 3, indexing="ij"), -1).reshape(-1, 3):
        j = index + d
        ok = np.all((j >= 0) & (j < grid), axis=1)
        out.update(np.ravel_multi_index(j[ok].T, grid).tolist())
    return sorted(out)


def segment_edges(graph_root: str, fragments: np.ndarray) -> dict[str, np.ndarray]:
    """Edges (u, v, count, sum) between the given fragments, summed over blocks."""
    try:
        meta = read_json(f"{graph_root}/graph/meta.json")
    except FileNotFoundError:
        raise InputError(
            f"no region graph under {graph_root}: a split needs the fragments' region graph "
            "(run `petaseg graph`), or give the right --graph to `petaseg proofread init`"
        ) from None
    frags = np.unique(np.asarray(fragments, np.uint64))
    scheme = meta.get("scheme")
    blocks = _blocks_around(frags, meta) if scheme else range(int(meta["num_blocks"]))
    parts = []
    for b in blocks:
        t = read_table(block_table(graph_root, "graph/edges", b), ["u", "v", "count", "sum"])
        keep = np.isin(t["u"], frags) & np.isin(t["v"], frags)
        if keep.any():
            parts.append({k: t[k][keep] for k in ("u", "v", "count", "sum")})
    if not parts:
        z = np.zeros(0, np.uint64)
        return {"u": z, "v": z, "count": np.zeros(0, np.int64), "sum": np.zeros(0)}
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("u", "v", "count", "sum")}
    return reduce_edges(cat["u"], cat["v"], cat["count"], cat["sum"], None)


def min_cut(
    fragments: np.ndarray,
    edges: dict[str, np.ndarray],
    sources: Sequence[int],
    sinks: Sequence[int],
) -> tuple[np.ndarray, float]:
    """Split ``fragments`` into a source side and a sink side by a minimum cut.

    Returns (mask of fragments on the sink side, cut value). Fragments not connected to any sink
    stay on the source side."""
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(int(f) for f in fragments)
    cap = edge_capacity(edges["count"], edges["sum"])
    for u, v, c in zip(edges["u"].tolist(), edges["v"].tolist(), cap.tolist(), strict=True):
        g.add_edge(int(u), int(v), capacity=c)
    dg = g.to_directed()
    src, snk = "source", "sink"
    for s in sources:
        dg.add_edge(src, int(s))  # no capacity attribute = infinite
    for t in sinks:
        dg.add_edge(int(t), snk)
    value, (_, sink_side) = nx.minimum_cut(dg, src, snk)
    sink_side = set(sink_side) - {snk}
    mask = np.array([int(f) in sink_side for f in fragments], bool)
    return mask, float(value)
