"""Hierarchical agglomeration of a region graph (one process, arrays in, arrays out).

Repeatedly merge the pair of adjacent regions with the lowest edge score; the edges of the two
regions to a common neighbour are combined (counts and sums add, histograms add) and rescored,
so the score of an edge is always that of all the contacts between the two current regions.
Scores: ``mean`` boundary value on the contact, or a ``quantile`` of it (from the histograms).

The result is a merge score per input edge: the level at which its two endpoints joined, where
the level is the running maximum of the merge scores (so levels are monotone, and "connected
components of edges with score < t" is exactly the agglomeration stopped before the first merge
at or above t). Edges whose endpoints never joined get +inf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.seg.mergeloop import merge_loop
from pipeline.seg.rag import histogram_quantile


@dataclass(frozen=True)
class Scoring:
    """How an edge is scored: ``mean`` or ``quantile`` (``q`` in [0, 1]) of its boundary values."""

    kind: str = "mean"
    q: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in ("mean", "quantile"):
            raise ValueError(f"scoring must be 'mean' or 'quantile', got {self.kind!r}")
        if not 0.0 <= self.q <= 1.0:
            raise ValueError(f"quantile must lie in [0, 1], got {self.q}")

    @classmethod
    def parse(cls, text: str) -> Scoring:
        """'mean', 'median' or 'quantile:0.75' (also 'q75')."""
        t = text.strip().lower()
        if t == "mean":
            return cls("mean")
        if t == "median":
            return cls("quantile", 0.5)
        if t.startswith("quantile:"):
            return cls("quantile", float(t.split(":", 1)[1]))
        if t.startswith("q") and t[1:].isdigit():
            return cls("quantile", int(t[1:]) / 100.0)
        raise ValueError(f"unknown scoring {text!r}: use mean, median, quantile:0.75 or q75")


def initial_scores(
    count: np.ndarray, total: np.ndarray, hist: np.ndarray | None, scoring: Scoring
) -> np.ndarray:
    if scoring.kind == "mean":
        return total / np.maximum(count, 1)
    if hist is None:
        raise ValueError("quantile scoring needs edge histograms")
    return histogram_quantile(hist, scoring.q)


def agglomerate(
    n_nodes: int,
    u: np.ndarray,
    v: np.ndarray,
    count: np.ndarray,
    total: np.ndarray,
    hist: np.ndarray | None = None,
    scoring: Scoring | None = None,
    threshold: float = np.inf,
) -> np.ndarray:
    """Agglomerate nodes ``0..n_nodes-1`` joined by edges ``(u, v)`` (distinct pairs, no self
    loops) until the lowest score reaches ``threshold``; return a merge score per edge.

    The priority queue and the merge bookkeeping run compiled (``mergeloop``); ties in score
    break by edge index, so the result is deterministic."""
    scoring = scoring or Scoring()
    n_edges = len(u)
    if n_edges == 0:
        return np.full(0, np.inf)
    use_hist = scoring.kind == "quantile"
    score = initial_scores(np.asarray(count), np.asarray(total), hist, scoring)
    hs = np.array(hist, np.float64, copy=True) if use_hist else np.zeros((1, 1))
    return merge_loop(
        int(n_nodes),
        np.asarray(u, np.int64),
        np.asarray(v, np.int64),
        np.array(count, np.float64, copy=True),
        np.array(total, np.float64, copy=True),
        hs,
        use_hist,
        float(scoring.q),
        np.array(score, np.float64, copy=True),
        float(threshold),
    )
