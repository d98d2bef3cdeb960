"""Array-based union-find for big graphs: connected components of edge lists through
scipy's sparse graph routines, incrementally over batches so edges can be streamed."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Component label (0..k-1) of each of ``n`` nodes, given edges between node indices."""
    if n == 0:
        return np.zeros(0, np.int64)
    u = np.asarray(u, np.int64)
    v = np.asarray(v, np.int64)
    graph = coo_matrix((np.ones(u.size, np.int8), (u, v)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


class StreamingUnionFind:
    """Union-find over ``n`` nodes whose edges arrive in batches.

    Each batch is joined to the current partition by running connected components on the
    graph of (current root, new edges); memory is O(n + batch), never O(all edges)."""

    def __init__(self, n: int):
        self.n = n
        self.root = np.arange(n, dtype=np.int64)

    def union(self, u: np.ndarray, v: np.ndarray) -> None:
        if len(u) == 0:
            return
        ru, rv = self.root[np.asarray(u, np.int64)], self.root[np.asarray(v, np.int64)]
        keep = ru != rv
        if not keep.any():
            return
        ru, rv = ru[keep], rv[keep]
        # components of the small graph on the roots that are touched
        touched, inv = np.unique(np.concatenate([ru, rv]), return_inverse=True)
        lab = components(len(touched), inv[: ru.size], inv[ru.size :])
        # the new root of a component: its smallest touched root
        new_root = np.full(lab.max() + 1, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(new_root, lab, touched)
        remap = np.arange(self.n, dtype=np.int64)
        remap[touched] = new_root[lab]
        self.root = remap[self.root]

    def labels(self) -> np.ndarray:
        """Each node's root (the smallest node index of its component)."""
        return self.root
