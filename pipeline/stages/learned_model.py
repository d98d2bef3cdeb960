"""The edge classifier of learned agglomeration on disk, and its training from region-graph
tables and ground truth.

A model file is one Parquet table of the training examples (feature columns, label) with the
feature names, default threshold and provenance in its metadata, as the correction stage's
models are: loading refits the trees (deterministic, seed 0), so no pickled code is loaded.

Training examples (``training_data``): the edges of the fragment graph, and of that graph
contracted onto the mean-agglomeration segmentations at ``levels`` (the regions a merge loop
meets after merges), each labelled by whether its regions' majority ground-truth ids differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.correct.truth import FragmentTruth
from pipeline.errors import InputError
from pipeline.io.tables import (
    block_table,
    iter_block_tables,
    read_graph_meta,
    read_model_table,
    read_table,
    write_model_table,
)
from pipeline.lut import Lut
from pipeline.runner.cache import cached
from pipeline.seg.agglomeration import Scoring, agglomerate
from pipeline.seg.edge_features import FEATURES
from pipeline.seg.learned import (
    MODEL_FORMAT,
    EdgeClassifier,
    contract,
    labelled_examples,
    majority_truth,
)
from pipeline.seg.rag import reduce_edges
from pipeline.seg.unionfind import components

LEVELS = (0.3, 0.4, 0.5, 0.6, 0.7)
GRID = tuple(round(0.05 * i, 2) for i in range(2, 20))
_CACHE_ONLY: dict[str, EdgeClassifier] = {}  # models being trained (not on disk)
ZOO = Path(__file__).resolve().parents[2] / "models" / "zoo"


def save_edge_model(model: EdgeClassifier, path: str) -> None:
    cols: dict[str, Any] = {f: model.x[:, i] for i, f in enumerate(FEATURES)}
    cols["label"] = model.y.astype(np.int8)
    write_model_table(path, cols, model.meta())


def load_edge_model(path: str) -> EdgeClassifier:
    """Read and fit an edge model file (``petaseg train agglomeration`` writes them)."""
    shipped = ", ".join(sorted(p.stem for p in ZOO.glob("*edge*.parquet"))) or "none"
    table, meta = read_model_table(
        path,
        "edge model",
        f"shipped: {shipped}; name a shipped one or train one with `petaseg train agglomeration`",
    )
    if meta.get("format") != MODEL_FORMAT or meta.get("features") != list(FEATURES):
        raise InputError(
            f"{path} was trained with other features ({meta.get('format')}); retrain it with "
            "`petaseg train agglomeration` of this version"
        )
    x = np.stack([table.column(f).to_numpy() for f in FEATURES], axis=1).astype(np.float64)
    y = table.column("label").to_numpy().astype(np.int64)
    return EdgeClassifier(x, y, float(meta["threshold"]), meta.get("info", {})).fit()


def model_file(name_or_path: str) -> str:
    """A shipped edge model's file (``models/zoo/<name>.parquet``, found by path: pipeline/
    never imports the model library) or the path itself."""
    shipped = ZOO / f"{name_or_path}.parquet"
    if "/" not in name_or_path and not Path(name_or_path).exists() and shipped.is_file():
        return str(shipped)
    return name_or_path


def edge_model(name_or_path: str) -> EdgeClassifier:
    """The fitted model (a shipped name or a file), loaded once per process."""
    if name_or_path in _CACHE_ONLY:
        return _CACHE_ONLY[name_or_path]
    path = model_file(name_or_path)
    return cached(f"edge-model:{path}", lambda: load_edge_model(path))


def node_sizes(root: str, blocks: int | list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted fragment ids, voxel counts) summed over the node tables of ``blocks`` (a block
    count or a list of block ids)."""
    ids, sizes = [], []
    for b in range(blocks) if isinstance(blocks, int) else blocks:
        t = read_table(block_table(root, "graph/nodes", b), ["id", "size"])
        ids.append(t["id"])
        sizes.append(t["size"])
    if not ids:
        return np.zeros(0, np.uint64), np.zeros(0, np.float64)
    u, inv = np.unique(np.concatenate(ids), return_inverse=True)
    return u, np.bincount(inv, weights=np.concatenate(sizes).astype(np.float64))


def _graph(root: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The whole region graph on node indices, node sizes and node ids."""
    meta = read_graph_meta(root)
    if not meta.get("nbins"):
        raise InputError(f"the region graph under {root} has no histograms; rebuild it with --bins")
    cols = ["u", "v", "count", "sum", "hist"]
    tables = [t for _, t in iter_block_tables(root, "graph/edges", meta["num_blocks"], cols)]
    cat = {k: np.concatenate([t[k] for t in tables]) for k in cols}
    e = reduce_edges(cat["u"], cat["v"], cat["count"], cat["sum"], cat["hist"].astype(np.float64))
    ids, size = node_sizes(root, meta["num_blocks"])
    e["u"], e["v"] = np.searchsorted(ids, e["u"]), np.searchsorted(ids, e["v"])
    return e, size, ids


def training_data(
    root: str, truth: tuple[np.ndarray, np.ndarray, np.ndarray], levels=LEVELS
) -> tuple[np.ndarray, np.ndarray]:
    """Labelled examples of the graph under ``root``; ``truth`` is a (fragment, gt, count)
    contingency table of its fragments against ground truth."""
    edges, size, ids = _graph(root)
    gt = majority_truth(ids, *truth)
    xs, ys = [], []
    x, y = labelled_examples(edges, size, gt)
    xs.append(x)
    ys.append(y)
    mean = agglomerate(len(ids), edges["u"], edges["v"], edges["count"], edges["sum"])
    for t in levels:
        keep = mean < t
        label = components(len(ids), edges["u"][keep], edges["v"][keep])
        coarse, coarse_size = contract(edges, size, label)
        x, y = labelled_examples(coarse, coarse_size, _cluster_truth(label, truth, ids))
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def scores_at(
    root: str, truth, scoring: str | Scoring, thresholds=GRID
) -> dict[float, dict[str, float]]:
    """VI split/merge and adapted Rand of the whole graph under ``root`` agglomerated with
    ``scoring``, cut at each threshold (from the fragment x ground-truth table ``truth``)."""
    scoring = Scoring.parse(scoring) if isinstance(scoring, str) else scoring
    edges, size, ids = _graph(root)
    ens = edge_model(scoring.model).ensemble if scoring.kind == "learned" else None
    merge = agglomerate(
        len(ids),
        edges["u"],
        edges["v"],
        edges["count"],
        edges["sum"],
        edges["hist"],
        scoring,
        size=size,
        ensemble=ens,
    )
    ft = FragmentTruth(*truth)
    out = {}
    for t in thresholds:
        keep = merge < t
        label = components(len(ids), edges["u"][keep], edges["v"][keep])
        out[float(t)] = ft.scores(Lut.from_arrays(ids, label.astype(np.uint64) + 1))
    return out


def best_threshold(scores: dict[float, dict[str, float]]) -> float:
    """The threshold of lowest VI sum (ties: the lowest threshold)."""
    return min(scores, key=lambda t: (scores[t]["vi_sum"], t))


def _curve_of(model: EdgeClassifier, root: str, truth) -> dict[float, dict[str, float]]:
    key = f"edge-model:{id(model)}#training"
    _CACHE_ONLY[key] = model
    try:
        return scores_at(root, truth, Scoring("learned", model=key))
    finally:
        del _CACHE_ONLY[key]


def _pooled(curves: list[dict[float, dict[str, float]]]) -> dict[float, dict[str, float]]:
    """Voxel-weighted means of the figures of several graphs, per threshold."""
    out = {}
    for t in curves[0]:
        w = np.array([c[t]["voxels"] for c in curves], np.float64)
        out[t] = {
            k: float(np.dot(w, [c[t][k] for c in curves]) / w.sum()) if k != "voxels" else w.sum()
            for k in curves[0][t]
        }
    return out


def train_edge_model(
    graphs: list[tuple[str, Any]], levels=LEVELS, info: dict[str, Any] | None = None
) -> EdgeClassifier:
    """Fit an edge model on the graphs (tables root, fragment x ground-truth table) and choose
    its threshold: with two or more graphs by cross-validation (each graph agglomerated by a
    model fitted on the others; lowest pooled VI sum), with one on the training graph itself
    (optimistic: the trees have seen its edges)."""
    data = [training_data(root, truth, levels) for root, truth in graphs]
    x, y = np.concatenate([d[0] for d in data]), np.concatenate([d[1] for d in data])
    model = EdgeClassifier(x, y, 0.5, dict(info or {})).fit()
    if len(graphs) > 1:
        curves = []
        for i, (root, truth) in enumerate(graphs):
            rest = [d for j, d in enumerate(data) if j != i]
            fold = EdgeClassifier(*(np.concatenate(c) for c in zip(*rest, strict=True))).fit()
            curves.append(_curve_of(fold, root, truth))
        curve, how = _pooled(curves), f"cross-validated over {len(graphs)} graphs"
    else:
        curve, how = _curve_of(model, *graphs[0]), "training graph (not cross-validated)"
    model.threshold = best_threshold(curve)
    model.info.update(
        {
            "examples": int(len(y)),
            "boundaries": int(y.sum()),
            "levels": list(levels),
            "threshold_chosen_on": how,
            "threshold_curve": {str(t): c for t, c in curve.items()},
        }
    )
    return model


def _cluster_truth(label: np.ndarray, truth, ids: np.ndarray) -> np.ndarray:
    """Majority ground truth of each cluster (clusters ``label`` of the nodes ``ids``)."""
    fragment, gt, count = truth
    idx = np.searchsorted(ids, fragment)
    ok = (idx < len(ids)) & (ids[np.minimum(idx, len(ids) - 1)] == fragment)
    clusters = np.arange(int(label.max()) + 1, dtype=np.uint64)
    return majority_truth(clusters, label[idx[ok]].astype(np.uint64), gt[ok], count[ok])


__all__ = [
    "LEVELS",
    "best_threshold",
    "edge_model",
    "scores_at",
    "train_edge_model",
    "load_edge_model",
    "model_file",
    "node_sizes",
    "save_edge_model",
    "training_data",
]
