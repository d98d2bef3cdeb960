"""Learned agglomeration: a gradient-boosted edge classifier (scikit-learn
``HistGradientBoostingClassifier``, as the correction stage uses) over ``edge_features``, trained
on region graphs labelled by ground truth, exported to flat arrays (``tree_ensemble``) and run
inside the compiled merge loop (``learned_loop``).

An edge's label is 1 when the majority ground-truth ids of its two regions differ (a true
boundary), so the learned score is the probability of a boundary and lower scores merge first,
as with mean boundary scoring. Examples come from the fragment graph and from the graphs
contracted onto coarser segmentations (the regions agglomeration actually meets after merges).

A model is its training examples plus metadata (no pickle): fitting is deterministic (seed 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.seg.edge_features import FEATURES, N_FEATURES, edge_features
from pipeline.seg.learned_loop import learned_merge_loop
from pipeline.seg.rag import reduce_edges
from pipeline.seg.tree_ensemble import TreeEnsemble

MODEL_FORMAT = "petaseg-edge-model/1"


def _classifier():
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=60,
        learning_rate=0.1,
        max_leaf_nodes=7,
        min_samples_leaf=100,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=0,
    )


def fit_ensemble(x: np.ndarray, y: np.ndarray) -> TreeEnsemble:
    """Fit the boosted trees on one OpenMP thread (a shared machine) and export them."""
    from threadpoolctl import threadpool_limits

    if len(np.unique(y)) < 2:
        raise ValueError("edge classifier needs examples of both merges and boundaries")
    with threadpool_limits(1):
        return TreeEnsemble.from_sklearn(_classifier().fit(x, y))


@dataclass
class EdgeClassifier:
    """Training examples (features, labels), the default merge threshold (a probability of a
    boundary) and provenance; ``ensemble`` once fitted."""

    x: np.ndarray
    y: np.ndarray
    threshold: float = 0.5
    info: dict[str, Any] = field(default_factory=dict)
    ensemble: TreeEnsemble | None = field(default=None, repr=False)

    def fit(self) -> EdgeClassifier:
        self.ensemble = fit_ensemble(self.x, self.y)
        return self

    def meta(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "features": list(FEATURES),
            "threshold": self.threshold,
            "info": self.info,
        }


def majority_truth(
    nodes: np.ndarray, fragment: np.ndarray, gt: np.ndarray, count: np.ndarray
) -> np.ndarray:
    """Per node (sorted fragment ids ``nodes``), the ground-truth id with most voxels in it, from
    a (fragment, gt, count) contingency table; 0 where the node has no ground truth."""
    out = np.zeros(len(nodes), np.uint64)
    if len(fragment) == 0:
        return out
    order = np.lexsort((-np.asarray(count), fragment))
    f, g = np.asarray(fragment)[order], np.asarray(gt)[order]
    first = np.ones(len(f), bool)
    first[1:] = f[1:] != f[:-1]
    f, g = f[first], g[first]
    idx = np.minimum(np.searchsorted(nodes, f), len(nodes) - 1)
    hit = nodes[idx] == f
    out[idx[hit]] = g[hit]
    return out


def contract(
    edges: dict[str, np.ndarray], size: np.ndarray, label: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The graph on node indices contracted onto clusters ``label`` (per node, 0..k-1): edges
    inside a cluster dropped, statistics of parallel edges summed, sizes summed."""
    lu, lv = label[edges["u"]], label[edges["v"]]
    keep = lu != lv
    out = reduce_edges(
        np.minimum(lu, lv)[keep],
        np.maximum(lu, lv)[keep],
        edges["count"][keep],
        edges["sum"][keep],
        edges["hist"][keep],
    )
    return out, np.bincount(label, weights=size, minlength=int(label.max()) + 1)


def labelled_examples(
    edges: dict[str, np.ndarray], size: np.ndarray, truth: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels (1 = the regions' majority ground truth differs) of the edges of a
    graph on node indices; edges touching a region without ground truth are left out."""
    tu, tv = truth[edges["u"]], truth[edges["v"]]
    keep = (tu != 0) & (tv != 0)
    x = edge_features(
        edges["count"][keep],
        edges["sum"][keep],
        edges["hist"][keep],
        size[edges["u"][keep]],
        size[edges["v"][keep]],
    )
    return x, (tu[keep] != tv[keep]).astype(np.int64)


def agglomerate_learned(
    n_nodes: int,
    u: np.ndarray,
    v: np.ndarray,
    count: np.ndarray,
    total: np.ndarray,
    hist: np.ndarray,
    size: np.ndarray,
    ensemble: TreeEnsemble,
    threshold: float = np.inf,
) -> np.ndarray:
    """Agglomerate nodes ``0..n_nodes-1`` by learned scores (see ``learned_loop``); return the
    merge score of every edge (+inf: never merged). Inputs are not modified."""
    if len(u) == 0:
        return np.full(0, np.inf)
    if hist is None or size is None:
        raise ValueError("learned scoring needs edge histograms and region sizes")
    result, _, _, _ = learned_merge_loop(
        int(n_nodes),
        np.asarray(u, np.int64),
        np.asarray(v, np.int64),
        np.array(count, np.float64, copy=True),
        np.array(total, np.float64, copy=True),
        np.array(hist, np.float64, copy=True),
        np.array(size, np.float64, copy=True),
        ensemble.arrays(),
        float(threshold),
    )
    return result


__all__ = [
    "MODEL_FORMAT",
    "N_FEATURES",
    "EdgeClassifier",
    "agglomerate_learned",
    "contract",
    "fit_ensemble",
    "labelled_examples",
    "majority_truth",
]
