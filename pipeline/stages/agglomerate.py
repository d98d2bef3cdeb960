"""Agglomeration stage: a merge score for every region-graph edge.

Two schemes, chosen by the size of the graph (``max_global_edges``):

* **global** (the graph fits one process): all block tables are streamed into one graph and
  agglomerated in one pass (exact hierarchical agglomeration).
* **two-level** (the graph does not fit): (1) blockwise and in parallel, each block agglomerates
  the edges of itself and its 26 neighbours (its context) up to ``local_threshold`` and keeps
  the merges of its own edges; (2) a streaming union-find over those merges contracts the graph
  (fragments -> local clusters; the statistics of the edges between two clusters are summed
  while the tables stream by, so only the contracted graph is ever in memory); (3) the
  contracted graph is agglomerated globally from there. An edge inside a local cluster scores
  its local merge score (or the cluster's highest one); an edge between clusters scores the
  level at which the global pass joined them. Cuts at thresholds >= ``local_threshold`` are the
  meaningful ones (below it the local merges are already applied).

Both passes run the compiled merge loop (``pipeline.seg.mergeloop``): about 200 bytes per edge
of the graph being agglomerated, so the client's memory is bounded by ``max_global_edges`` (the
whole graph) or by the contracted graph, never by the volume.

Scoring ``learned:<model>`` (a shipped name such as ``fib-edge-v1`` or a file from ``petaseg
train agglomeration``) runs the same two schemes with the learned merge loop; it also needs the
fragments' sizes (the graph's node tables: all of them for the global pass, the 27 context
blocks' for a local one, summed per cluster for the contracted graph).

Scores are written per block (``agglomeration/scores/<block>.parquet``: u, v, score), aligned
with the graph's edge tables; +inf marks edges whose endpoints never joined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from distributed import Client

from pipeline.errors import InputError
from pipeline.io.tables import (
    block_table,
    iter_block_tables,
    num_rows,
    read_graph_meta,
    read_table,
    write_json,
    write_table,
)
from pipeline.runner.blockwise import Block, BlockTask, run_blockwise
from pipeline.runner.tasks import grid_task
from pipeline.seg.agglomeration import Scoring, agglomerate
from pipeline.seg.rag import pair_keys, reduce_edges
from pipeline.seg.unionfind import StreamingUnionFind
from pipeline.stages.learned_model import edge_model, node_sizes

DEFAULT_MAX_GLOBAL_EDGES = 5_000_000
DEFAULT_LOCAL_THRESHOLD = 0.5


def node_ids(root: str, num_blocks: int) -> np.ndarray:
    """Sorted ids of all fragments (from the per-block node tables, streamed)."""
    parts = [t["id"] for _, t in iter_block_tables(root, "graph/nodes", num_blocks, ["id"])]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)


def _edges_of(tables: list[dict[str, np.ndarray]], quantile: bool) -> dict[str, np.ndarray]:
    cols = {k: np.concatenate([t[k] for t in tables]) for k in ("u", "v", "count", "sum")}
    hist = np.concatenate([t["hist"] for t in tables]).astype(np.int64) if quantile else None
    return reduce_edges(cols["u"], cols["v"], cols["count"], cols["sum"], hist)


def _agglomerate_table(
    edges: dict[str, np.ndarray], scoring: Scoring, threshold: float = np.inf, sizes=None
) -> tuple[np.ndarray, np.ndarray]:
    """Agglomerate a graph given by id pairs; return (sorted pair keys, scores) with keys over
    the graph's own node numbering (see ``_keys``). Learned scoring needs ``sizes``: (sorted
    ids, voxel counts) covering the graph's nodes."""
    nodes = np.unique(np.concatenate([edges["u"], edges["v"]]))
    iu, iv = np.searchsorted(nodes, edges["u"]), np.searchsorted(nodes, edges["v"])
    size, ensemble = None, None
    if scoring.kind == "learned":
        size = _sizes_of(sizes, nodes)
        ensemble = edge_model(scoring.model).ensemble
    scores = agglomerate(
        len(nodes),
        iu,
        iv,
        edges["count"],
        edges["sum"],
        edges.get("hist"),
        scoring,
        threshold,
        size,
        ensemble,
    )
    return nodes, scores


def _sizes_of(sizes: tuple[np.ndarray, np.ndarray], nodes: np.ndarray) -> np.ndarray:
    """Voxel counts of ``nodes`` from a (sorted ids, sizes) table (1 where an id is missing)."""
    ids, size = sizes
    idx = np.minimum(np.searchsorted(ids, nodes), max(len(ids) - 1, 0))
    if len(ids) == 0:
        return np.ones(len(nodes))
    return np.where(ids[idx] == nodes, size[idx], 1.0)


def _lookup(
    nodes: np.ndarray, keys: np.ndarray, values: np.ndarray, u: np.ndarray, v: np.ndarray
) -> np.ndarray:
    """Values of the pairs (u, v) (ids) in a table keyed by ``pair_keys`` over ``nodes``;
    +inf where a pair is absent."""
    out = np.full(len(u), np.inf)
    if len(u) == 0 or len(keys) == 0:
        return out
    iu, iv = np.searchsorted(nodes, u), np.searchsorted(nodes, v)
    iu_c, iv_c = np.minimum(iu, len(nodes) - 1), np.minimum(iv, len(nodes) - 1)
    present = (nodes[iu_c] == u) & (nodes[iv_c] == v)
    k = pair_keys(iu_c, iv_c, len(nodes))
    pos = np.minimum(np.searchsorted(keys, k), len(keys) - 1)
    hit = present & (keys[pos] == k)
    out[hit] = values[pos[hit]]
    return out


def _scored(edges: dict[str, np.ndarray], scoring: Scoring, threshold: float = np.inf, sizes=None):
    """Agglomerate ``edges`` and return a lookup (nodes, sorted keys, scores)."""
    nodes, scores = _agglomerate_table(edges, scoring, threshold, sizes)
    keys = pair_keys(
        np.searchsorted(nodes, edges["u"]), np.searchsorted(nodes, edges["v"]), len(nodes)
    )
    order = np.argsort(keys)
    return nodes, keys[order], scores[order]


# --- two-level scheme, step 1: blockwise local agglomeration ---------------------------------


class LocalAgglomerationBlock:
    """Agglomerate a block's edges together with its 26 neighbours' up to a threshold; write the
    merges of the block's own edges (u, v, score)."""

    def __init__(self, root: str, grid_shape: list[int], scoring: Scoring, threshold: float):
        self.root, self.grid_shape = root, grid_shape
        self.scoring, self.threshold = scoring, threshold

    def neighbours(self, index: tuple[int, ...]) -> list[int]:
        out = []
        for dz in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    j = (index[0] + dz, index[1] + dy, index[2] + dx)
                    if all(0 <= a < n for a, n in zip(j, self.grid_shape, strict=True)):
                        out.append((j[0] * self.grid_shape[1] + j[1]) * self.grid_shape[2] + j[2])
        return out

    def __call__(self, block: Block) -> None:
        quantile = self.scoring.needs_hist
        cols = ["u", "v", "count", "sum"] + (["hist"] if quantile else [])
        own = read_table(block_table(self.root, "graph/edges", block.block_id), cols)
        context = self.neighbours(block.index)
        tables = [read_table(block_table(self.root, "graph/edges", b), cols) for b in context]
        edges = _edges_of(tables, quantile)
        sizes = node_sizes(self.root, context) if self.scoring.kind == "learned" else None
        nodes, keys, scores = _scored(edges, self.scoring, self.threshold, sizes)
        s = _lookup(nodes, keys, scores, own["u"], own["v"])
        merged = np.isfinite(s)
        write_table(
            block_table(self.root, "agglomeration/local", block.block_id),
            {"u": own["u"][merged], "v": own["v"][merged], "score": s[merged]},
        )


# --- the stage ---------------------------------------------------------------------------------


def _write_scores(root: str, num_blocks: int, score_of) -> None:
    for block_id, t in iter_block_tables(root, "graph/edges", num_blocks, ["u", "v"]):
        write_table(
            block_table(root, "agglomeration/scores", block_id),
            {"u": t["u"], "v": t["v"], "score": score_of(block_id, t["u"], t["v"])},
        )


def _global(root: str, meta: dict[str, Any], scoring: Scoring) -> dict[str, Any]:
    quantile = scoring.needs_hist
    cols = ["u", "v", "count", "sum"] + (["hist"] if quantile else [])
    tables = [t for _, t in iter_block_tables(root, "graph/edges", meta["num_blocks"], cols)]
    edges = _edges_of(tables, quantile)
    del tables
    sizes = node_sizes(root, meta["num_blocks"]) if scoring.kind == "learned" else None
    nodes, keys, scores = _scored(edges, scoring, sizes=sizes)
    _write_scores(root, meta["num_blocks"], lambda _b, u, v: _lookup(nodes, keys, scores, u, v))
    return {
        "scheme": "global",
        "edges": int(len(edges["u"])),
        "merged": int(np.isfinite(scores).sum()),
    }


def _two_level(
    root: str,
    meta: dict[str, Any],
    scoring: Scoring,
    local_threshold: float,
    client: Client | None,
    progress: bool,
) -> dict[str, Any]:
    task = local_merge_task(root, meta, scoring, local_threshold)
    run_blockwise(task, client=client, progress=progress)
    clusters = LocalClusters.of(root, meta["num_blocks"])
    contracted = _contracted_graph(root, meta["num_blocks"], clusters, scoring)
    sizes = None
    if scoring.kind == "learned":  # the contracted graph's nodes are cluster roots (indices)
        ids, size = node_sizes(root, meta["num_blocks"])
        per_id = _sizes_of((ids, size), clusters.ids)
        sizes = (np.arange(len(clusters.ids)), np.bincount(clusters.root_of, weights=per_id))
    nodes, keys, scores = _scored(contracted, scoring, sizes=sizes)
    _write_scores(root, meta["num_blocks"], TwoLevelScores(root, clusters, nodes, keys, scores))
    return {
        "scheme": "two-level",
        "local_threshold": local_threshold,
        "fragments": int(len(clusters.ids)),
        "clusters_after_local": int(len(np.unique(clusters.root_of))),
        "contracted_edges": int(len(contracted["u"])),
        "merged_globally": int(np.isfinite(scores).sum()),
    }


def _scoring_params(scoring: Scoring) -> list:
    """The scoring part of the done markers' parameter hash (the model file for learned)."""
    return [scoring.kind, scoring.q] + ([scoring.model] if scoring.model else [])


def local_merge_task(
    root: str, meta: dict[str, Any], scoring: Scoring, local_threshold: float
) -> BlockTask:
    """Step 1: every block agglomerates its edges in its neighbours' context."""
    return grid_task(
        "agglomerate-local",
        meta,
        LocalAgglomerationBlock(root, meta["grid_shape"], scoring, local_threshold),
        f"{root}/agglomeration/local",
        {"scoring": _scoring_params(scoring), "local_threshold": local_threshold, **meta},
    )


@dataclass
class LocalClusters:
    """Step 2: the fragments joined by the local merges (a union-find streamed over the blocks'
    merge tables). ``ids``: all fragment ids, sorted; ``root_of``: each fragment's cluster (an
    index into ``ids``); ``level``: per cluster root, its highest local merge score."""

    ids: np.ndarray
    root_of: np.ndarray
    level: np.ndarray

    @classmethod
    def of(cls, root: str, num_blocks: int) -> LocalClusters:
        ids = node_ids(root, num_blocks)
        uf = StreamingUnionFind(len(ids))
        level = np.full(len(ids), -np.inf)
        for _, t in iter_block_tables(root, "agglomeration/local", num_blocks):
            iu, iv = np.searchsorted(ids, t["u"]), np.searchsorted(ids, t["v"])
            uf.union(iu, iv)
            np.maximum.at(level, iu, t["score"])
        root_of = uf.labels()
        cluster_level = np.full(len(ids), -np.inf)
        np.maximum.at(cluster_level, root_of, level)
        return cls(ids, root_of, cluster_level)

    def roots(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The clusters of fragment ids ``u`` and ``v``."""
        return self.root_of[np.searchsorted(self.ids, u)], self.root_of[
            np.searchsorted(self.ids, v)
        ]


def _contracted_graph(
    root: str, num_blocks: int, clusters: LocalClusters, scoring: Scoring
) -> dict[str, np.ndarray]:
    """The graph contracted onto the clusters (edges between two clusters, their statistics
    summed), built while the edge tables stream by: only the contracted graph is in memory."""
    quantile = scoring.needs_hist
    cols = ["u", "v", "count", "sum"] + (["hist"] if quantile else [])
    acc: dict[str, np.ndarray] | None = None
    pending: list[dict[str, np.ndarray]] = []
    rows = 0
    for _, t in iter_block_tables(root, "graph/edges", num_blocks, cols):
        ru, rv = clusters.roots(t["u"], t["v"])
        keep = ru != rv
        part = {
            "u": np.minimum(ru, rv)[keep],
            "v": np.maximum(ru, rv)[keep],
            "count": t["count"][keep],
            "sum": t["sum"][keep],
        }
        if quantile:
            part["hist"] = t["hist"][keep].astype(np.int64)
        pending.append(part)
        rows += int(keep.sum())
        if rows > max(1 << 20, 2 * (len(acc["u"]) if acc else 0)):
            acc = _edges_of(([acc] if acc else []) + pending, quantile)
            pending, rows = [], 0
    # the contracted graph lives on root indices
    return _edges_of(([acc] if acc else []) + pending, quantile)


class TwoLevelScores:
    """Step 3's merge score of an edge: inside a local cluster its local merge score (or the
    cluster's highest one), between clusters the level at which the global pass joined them."""

    def __init__(
        self,
        root: str,
        clusters: LocalClusters,
        nodes: np.ndarray,
        keys: np.ndarray,
        scores: np.ndarray,
    ):
        self.root, self.clusters = root, clusters
        self.nodes, self.keys, self.scores = nodes, keys, scores

    def __call__(self, block_id: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        ru, rv = self.clusters.roots(u, v)
        out = _lookup(self.nodes, self.keys, self.scores, np.minimum(ru, rv), np.maximum(ru, rv))
        inside = ru == rv
        if inside.any():
            local = read_table(block_table(self.root, "agglomeration/local", block_id))
            own = _lookup_pairs(local["u"], local["v"], local["score"], u[inside], v[inside])
            out[inside] = np.where(np.isfinite(own), own, self.clusters.level[ru[inside]])
        return out


def _lookup_pairs(tu, tv, tvals, u, v) -> np.ndarray:
    """Values of id pairs (u, v) in a small (tu, tv) -> value table; +inf where absent."""
    out = np.full(len(u), np.inf)
    if len(tu) == 0:
        return out
    nodes = np.unique(np.concatenate([tu, tv]))
    keys = pair_keys(np.searchsorted(nodes, tu), np.searchsorted(nodes, tv), len(nodes))
    order = np.argsort(keys)
    return _lookup(nodes, keys[order], np.asarray(tvals)[order], u, v)


def run_agglomerate(
    root: str,
    scoring: Scoring | str = "mean",
    max_global_edges: int = DEFAULT_MAX_GLOBAL_EDGES,
    local_threshold: float = DEFAULT_LOCAL_THRESHOLD,
    client: Client | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Merge scores for the region graph under ``root`` (see the module docstring)."""
    meta = read_graph_meta(root)
    if isinstance(scoring, str):
        try:
            scoring = Scoring.parse(scoring)
        except ValueError as e:
            raise InputError(str(e)) from None
    if scoring.needs_hist and not meta.get("nbins"):
        raise InputError(
            f"{scoring.kind} scoring needs edge histograms; rebuild the graph with --bins > 0"
        )
    if scoring.kind == "learned":
        edge_model(scoring.model)  # refuses a missing or foreign model file before any work
    total = sum(num_rows(block_table(root, "graph/edges", b)) for b in range(meta["num_blocks"]))
    if total <= max_global_edges:
        info = _global(root, meta, scoring)
    else:
        info = _two_level(root, meta, scoring, local_threshold, client, progress)
    info.update({"scoring": scoring.kind, "quantile": scoring.q, "edge_rows": total})
    if scoring.model:
        info["model"] = scoring.model
    write_json(f"{root}/agglomeration/meta.json", info)
    return info
