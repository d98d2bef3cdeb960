"""Hierarchical agglomeration of a region graph (one process, arrays in, arrays out).

Repeatedly merge the pair of adjacent regions with the lowest edge score; the edges of the two
regions to a common neighbour are combined (counts and sums add, histograms add) and rescored,
so the score of an edge is always that of all the contacts between the two current regions.
Scores: ``mean`` boundary value on the contact, or a ``quantile`` of it (from the histograms),
or ``learned``: the probability of a boundary from a boosted edge classifier, re-featured and
rescored for every edge of a merged region (``learned``).

The result is a merge score per input edge: the level at which its two endpoints joined, where
the level is the running maximum of the merge scores (so levels are monotone, and "connected
components of edges with score < t" is exactly the agglomeration stopped before the first merge
at or above t). Edges whose endpoints never joined get +inf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.seg.learned import agglomerate_learned
from pipeline.seg.mergeloop import histogram_quantiles, merge_loop
from pipeline.seg.rag import histogram_quantile
from pipeline.seg.tree_ensemble import TreeEnsemble


@dataclass(frozen=True)
class Scoring:
    """How an edge is scored: ``mean`` or ``quantile`` (``q`` in [0, 1]) of its boundary values,
    or ``learned`` by the edge model file ``model``."""

    kind: str = "mean"
    q: float = 0.5
    model: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("mean", "quantile", "learned"):
            raise ValueError(f"scoring must be 'mean', 'quantile' or 'learned', got {self.kind!r}")
        if not 0.0 <= self.q <= 1.0:
            raise ValueError(f"quantile must lie in [0, 1], got {self.q}")
        if (self.kind == "learned") != bool(self.model):
            raise ValueError("learned scoring needs a model file (learned:<model.parquet>)")

    @property
    def needs_hist(self) -> bool:
        return self.kind in ("quantile", "learned")

    @classmethod
    def parse(cls, text: str) -> Scoring:
        """'mean', 'median', 'quantile:0.75' (also 'q75') or 'learned:<model file>'."""
        if text.strip().lower().startswith("learned:"):
            return cls("learned", model=text.strip().split(":", 1)[1])
        t = text.strip().lower()
        if t == "mean":
            return cls("mean")
        if t == "median":
            return cls("quantile", 0.5)
        if t.startswith("quantile:"):
            return cls("quantile", float(t.split(":", 1)[1]))
        if t.startswith("q") and t[1:].isdigit():
            return cls("quantile", int(t[1:]) / 100.0)
        raise ValueError(
            f"unknown scoring {text!r}: use mean, median, quantile:0.75, q75 or learned:<model>"
        )


def initial_scores(
    count: np.ndarray, total: np.ndarray, hist: np.ndarray | None, scoring: Scoring
) -> np.ndarray:
    if scoring.kind == "mean":
        return total / np.maximum(count, 1)
    if hist is None:
        raise ValueError("quantile scoring needs edge histograms")
    return histogram_quantile(hist, scoring.q)


def merge_histograms(hist: np.ndarray) -> np.ndarray:
    """A copy of ``hist`` for the merge loop to add rows of in place: uint32 (half the memory of
    float64, so a 16-bin row is one cache line) when it holds counts whose grand total fits, so
    that no sum of rows overflows and every sum is the same as in float64; else float64."""
    h = np.asarray(hist)
    counts = h.dtype.kind in "ui" and h.size and h.min() >= 0 and h.sum(dtype=np.uint64) < 2**32
    dtype = np.dtype(np.uint32 if counts else np.float64)
    buf = np.empty(h.size * dtype.itemsize + 64, np.uint8)  # rows start on cache lines
    start = -buf.ctypes.data % 64
    out = buf[start : start + h.size * dtype.itemsize].view(dtype).reshape(h.shape)
    out[...] = h
    return out


def agglomerate(
    n_nodes: int,
    u: np.ndarray,
    v: np.ndarray,
    count: np.ndarray,
    total: np.ndarray,
    hist: np.ndarray | None = None,
    scoring: Scoring | None = None,
    threshold: float = np.inf,
    size: np.ndarray | None = None,
    ensemble: TreeEnsemble | None = None,
) -> np.ndarray:
    """Agglomerate nodes ``0..n_nodes-1`` joined by edges ``(u, v)`` (distinct pairs, no self
    loops) until the lowest score reaches ``threshold``; return a merge score per edge.
    Learned scoring also needs the nodes' ``size`` and the fitted ``ensemble``.

    The priority queue and the merge bookkeeping run compiled (``mergeloop``); ties in score
    break by edge index, so the result is deterministic."""
    scoring = scoring or Scoring()
    n_edges = len(u)
    if n_edges == 0:
        return np.full(0, np.inf)
    if scoring.kind == "learned":
        if ensemble is None:
            raise ValueError("learned scoring needs the fitted edge classifier")
        return agglomerate_learned(n_nodes, u, v, count, total, hist, size, ensemble, threshold)
    if n_edges >= 2**30 or n_nodes >= 2**31:  # the merge loop keeps them in int32
        raise ValueError(f"{n_edges} edges, {n_nodes} nodes: at most 2**30 and 2**31")
    use_hist = scoring.kind == "quantile"
    if use_hist:  # compiled, the same floats as initial_scores
        if hist is None:
            raise ValueError("quantile scoring needs edge histograms")
        hs = merge_histograms(hist)
        score = histogram_quantiles(hs, float(scoring.q))
    else:
        hs = np.zeros((1, 1), np.uint32)
        score = initial_scores(np.asarray(count), np.asarray(total), hist, scoring)
    return merge_loop(
        int(n_nodes),
        np.asarray(u, np.int64),
        np.asarray(v, np.int64),
        np.asarray(count, np.float64),
        np.asarray(total, np.float64),
        hs,
        use_hist,
        float(scoring.q),
        np.asarray(score, np.float64),
        float(threshold),
    )
