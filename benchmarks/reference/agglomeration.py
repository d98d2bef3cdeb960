"""The pure-Python agglomeration (a ``heapq`` priority queue and dicts of neighbours) that
``pipeline.seg.agglomeration`` replaced with compiled kernels: the reference the compiled version
must match exactly (tests) and the peer of the agglomeration benchmark."""

from __future__ import annotations

import heapq

import numpy as np

from pipeline.seg.agglomeration import Scoring, initial_scores


def _adjacency(
    n_nodes: int, u: np.ndarray, v: np.ndarray
) -> tuple[list[dict[int, int] | None], list[tuple[int, int]]]:
    """Per node, its neighbours and the edges to them (``adj[a][b] = e``), and the two ends of
    every edge."""
    adj: list[dict[int, int] | None] = [{} for _ in range(n_nodes)]
    for e, (a, b) in enumerate(zip(np.asarray(u).tolist(), np.asarray(v).tolist(), strict=True)):
        adj[a][b] = e
        adj[b][a] = e
    ends = [
        (int(a), int(b))
        for a, b in zip(np.asarray(u).tolist(), np.asarray(v).tolist(), strict=True)
    ]
    return adj, ends


def _row_quantile(row: np.ndarray, q: float) -> float:
    """``histogram_quantile`` of one histogram row (the merge loop's rescoring, without the
    batch version's array overhead)."""
    nb = row.shape[0]
    c = np.cumsum(row)
    target = q * c[-1]
    i = min(int(np.searchsorted(c, target)), nb - 1)
    below = c[i - 1] if i > 0 else 0.0
    inside = row[i]
    frac = (target - below) / inside if inside > 0 else 0.5
    return (i + min(max(frac, 0.0), 1.0)) / nb


def agglomerate_reference(
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
    loops) until the lowest score reaches ``threshold``; return a merge score per edge."""
    scoring = scoring or Scoring()
    n_edges = len(u)
    result = np.full(n_edges, np.inf)
    if n_edges == 0:
        return result
    cnt = np.asarray(count, np.float64).tolist()
    tot = np.asarray(total, np.float64).tolist()
    use_hist = scoring.kind == "quantile"
    hs = np.array(hist, np.float64, copy=True) if use_hist else None
    score = initial_scores(np.asarray(count), np.asarray(total), hist, scoring).tolist()
    alive = [True] * n_edges
    # members of a live edge, as singly linked lists of input edges (O(1) concatenation)
    nxt = [-1] * n_edges
    tail = list(range(n_edges))
    adj, ends = _adjacency(n_nodes, u, v)
    heap = [(s, e) for e, s in enumerate(score)]
    heapq.heapify(heap)
    level = -np.inf
    q = scoring.q
    while heap:
        s, e = heapq.heappop(heap)
        if not alive[e] or s != score[e]:
            continue
        if s >= threshold:
            break
        level = max(level, s)
        alive[e] = False
        k = e
        while k != -1:
            result[k] = level
            k = nxt[k]
        a, b = ends[e]
        adj_a, adj_b = adj[a], adj[b]
        del adj_a[b]
        del adj_b[a]
        if len(adj_a) < len(adj_b):
            a, b, adj_a, adj_b = b, a, adj_b, adj_a
        # fold the smaller neighbourhood (b) into the larger one (a)
        for n, f in adj_b.items():
            adj_n = adj[n]
            del adj_n[b]
            g = adj_a.get(n)
            if g is None:
                adj_a[n] = f
                adj_n[a] = f
                ends[f] = (a, n)
                continue
            alive[f] = False
            cnt[g] += cnt[f]
            tot[g] += tot[f]
            nxt[tail[g]] = f
            tail[g] = tail[f]
            if use_hist:
                hs[g] += hs[f]
                new = _row_quantile(hs[g], q)
            else:
                new = tot[g] / cnt[g]
            score[g] = new
            heapq.heappush(heap, (new, g))
        adj[b] = None
    return result
