"""The compiled merge loop of hierarchical agglomeration (see ``agglomeration``): a priority queue
of edges (``edgeheap``), and merge bookkeeping in a few flat arrays:

* an edge record per edge, one int32 row of 8 (32 bytes, so an edge is one cache line read):
  its two ends (a negative end 0 marks a dead edge), the links of its two incidence records in
  their nodes' lists, and its contact count and boundary sum as two float64 (a float64 view of
  the same rows, columns 2 and 3);
* the edges of a node: a linked list of incidence records (record ``2e`` is edge ``e`` seen from
  its first end, ``2e + 1`` from its second; its link is column ``2 + r % 2`` of the edge), so
  folding one node into another moves records in O(1) each; records of dead edges are dropped
  when a list is next walked;
* which edge joins two live nodes: a hash table of node pairs (``pairtable``, edge-verified),
  only ever inserted into: the entry of a pair of live nodes is always current, and an entry
  left behind (its edge moved to another node or died) never matches;
* a node's degree (its number of live neighbours), which picks the node that survives a merge
  (the one with more neighbours, as in the pure-Python version, so ties break alike);
* the input edges an edge stands for: a log of (edge, the edge it was added into), read
  backwards at the end, so an edge takes the merge score of the edge it ended up in.
"""

from __future__ import annotations

import numba
import numpy as np

from pipeline.seg.edgeheap import new_heap, pop, remove, rescore
from pipeline.seg.pairtable import find_edge, grown_edges, pair_hash, set_slot


@numba.njit(cache=True, nogil=True, inline="always")
def _add_row_quantile(hist, g, f, q):
    """Add histogram row ``f`` into row ``g``; return quantile ``q`` of the sum, as
    ``rag.histogram_quantile`` computes it (the same sequential cumulative sums, so the same
    floats; integer rows sum exactly either way). Indexed, not sliced: no views are made."""
    nb = hist.shape[1]
    total = 0.0
    for j in range(nb):
        hist[g, j] += hist[f, j]
        total += hist[g, j]
    target = q * total
    c = 0.0
    below = 0.0
    i = -1
    for j in range(nb):
        c += hist[g, j]
        if c >= target:
            i = j
            break
        below = c
    if i == -1:  # not reached (target <= total); as searchsorted past the end, then clipped
        i = nb - 1
        below = 0.0
        for j in range(nb - 1):
            below += hist[g, j]
    inside = np.float64(hist[g, i])
    frac = (target - below) / inside if inside > 0 else 0.5
    if 0.0 > frac:
        frac = 0.0
    if 1.0 < frac:
        frac = 1.0
    return (i + frac) / nb


@numba.njit(cache=True, nogil=True)
def histogram_quantiles(hist, q):
    """Quantile ``q`` of each histogram row: the same floats as ``rag.histogram_quantile`` (its
    sequential cumulative sums, its bin, and its division by ``max(inside, 1)``), a row at a
    time instead of in whole-array passes."""
    n, nb = hist.shape
    out = np.empty(n)
    for e in range(n):
        total = 0.0
        for j in range(nb):
            total += hist[e, j]
        target = q * total
        c, below, i = 0.0, 0.0, nb - 1
        for j in range(nb - 1):  # the first bin whose cumulative sum reaches the target
            c += hist[e, j]
            if not c < target:
                i = j
                break
            below = c
        inside = np.float64(hist[e, i])
        frac = (target - below) / max(inside, 1.0) if inside > 0 else 0.5
        out[e] = (i + min(max(frac, 0.0), 1.0)) / nb
    return out


@numba.njit(cache=True, nogil=True)
def edge_records(n_nodes, u, v, cnt, tot):
    """The edge records (see the module docstring), each node's list of incidence records (head,
    last) and its degree."""
    n = u.size
    rec = np.empty((n, 8), np.int32)
    stats = rec.view(np.float64)
    head = np.full(n_nodes, -1, np.int64)
    last = np.full(n_nodes, -1, np.int64)
    deg = np.zeros(n_nodes, np.int64)
    for e in range(n):
        rec[e, 0], rec[e, 1], rec[e, 2], rec[e, 3] = u[e], v[e], -1, -1
        stats[e, 2], stats[e, 3] = cnt[e], tot[e]
    for r in range(2 * n):
        node = rec[r >> 1, r & 1]
        if head[node] == -1:
            head[node] = r
        else:
            rec[last[node] >> 1, 2 + (last[node] & 1)] = r
        last[node] = r
        deg[node] += 1
    return rec, head, last, deg


@numba.njit(cache=True, nogil=True)
def edge_table(n_nodes, rec):
    """The pair table (a node pair -> its edge) of the initial edges."""
    n = rec.shape[0]
    table = np.zeros(max(16, 1 << int(np.ceil(np.log2(2 * n + 1)))), np.uint64)
    for e in range(n):
        h = pair_hash(rec[e, 0], rec[e, 1], n_nodes)
        s, _ = find_edge(table, h, rec[e, 0], rec[e, 1], rec)
        set_slot(table, s, h, e)
    return table


@numba.njit(cache=True, nogil=True, inline="always")
def _combine(g, f, stats, hist, use_hist, q):
    """Add edge ``f``'s statistics into edge ``g``; return ``g``'s new score."""
    stats[g, 2] += stats[f, 2]
    stats[g, 3] += stats[f, 3]
    if use_hist:
        return _add_row_quantile(hist, g, f, q)
    return stats[g, 3] / stats[g, 2]


@numba.njit(cache=True, nogil=True, inline="always")
def _link(rec, r, nxt):
    """Point incidence record ``r`` at the record ``nxt`` after it in its list."""
    rec[r >> 1, 2 + (r & 1)] = nxt


@numba.njit(cache=True, nogil=True, inline="always")
def _add_into(g, f, n, rec, stats, deg, hist, use_hist, q, heap, pos, size):
    """Edge ``f`` (from the folded node to ``n``) dies, added into edge ``g`` (from the survivor
    to ``n``): it leaves the heap and ``g`` is rescored. Returns the heap's size."""
    rec[f, 0] = -1
    deg[n] -= 1
    new = _combine(g, f, stats, hist, use_hist, q)
    remove(heap, pos, size, f)
    rescore(heap, pos, size - 1, g, new)
    return size - 1


@numba.njit(cache=True, nogil=True, inline="always")
def _splice(rec, head, last, a, b, moved_head, moved_last):
    """Append the records moved from ``b`` (a list ``moved_head``..``moved_last``) to ``a``'s
    list, and empty ``b``'s."""
    if moved_head != -1:
        if head[a] == -1:
            head[a] = moved_head
        else:
            _link(rec, last[a], moved_head)
        last[a] = moved_last
    head[b], last[b] = -1, -1


@numba.njit(cache=True, nogil=True)
def merge_loop(n_nodes, u, v, cnt, tot, hist, use_hist, q, score, threshold):
    """Agglomerate (see ``agglomeration.agglomerate``); rows of ``hist`` are added up in place
    (the other arrays are only read). Returns the merge score of every edge (+inf: never merged).

    Merging edge e = (a, b) folds b into a (the end with more live neighbours): each edge (b, n)
    either moves to (a, n) or, when a already has an edge to n, is added into that one (which is
    rescored), and logged. The fold is written out here, not in a function of its own, so the
    loop takes no array references per merge."""
    n_edges = u.size
    result = np.full(n_edges, np.inf)
    rec, head, last, deg = edge_records(n_nodes, u, v, cnt, tot)
    stats = rec.view(np.float64)
    table = edge_table(n_nodes, rec)
    n_pairs, n_log = n_edges, 0
    log = np.empty((n_edges, 2), np.int32)
    heap, pos = new_heap(score)
    size = n_edges
    level = -np.inf
    while size > 0:
        s, e = pop(heap, pos, size)
        size -= 1
        if s >= threshold:
            break
        level = max(level, s)
        result[e] = level
        a, b = rec[e, 0], rec[e, 1]
        rec[e, 0] = -1
        deg[a] -= 1
        deg[b] -= 1
        if deg[a] < deg[b]:
            a, b = b, a
        if 2 * (n_pairs + deg[b]) > table.size:  # room for every edge of b to move
            table = grown_edges(table)
        moved_head, moved_last = -1, -1
        r = head[b]
        while r != -1:
            f = r >> 1
            r_next = rec[f, 2 + (r & 1)]
            if rec[f, 0] >= 0:
                n = rec[f, 1] if rec[f, 0] == b else rec[f, 0]
                h = pair_hash(a, n, n_nodes)
                slot, g = find_edge(table, h, a, n, rec)
                if g == -1:  # a has no edge to n: f moves to (a, n)
                    rec[f, 0], rec[f, 1] = a, n
                    deg[a] += 1
                    set_slot(table, slot, h, f)
                    n_pairs += 1
                    rec[f, 2 + (r & 1)] = -1
                    if moved_head == -1:
                        moved_head = r
                    else:  # indexed here, not through _link: no array reference taken
                        rec[moved_last >> 1, 2 + (moved_last & 1)] = r
                    moved_last = r
                else:
                    log[n_log, 0], log[n_log, 1] = f, g
                    n_log += 1
                    size = _add_into(g, f, n, rec, stats, deg, hist, use_hist, q, heap, pos, size)
            r = r_next
        _splice(rec, head, last, a, b, moved_head, moved_last)
    for i in range(n_log - 1, -1, -1):  # an added edge merged when the edge it is in did
        result[log[i, 0]] = result[log[i, 1]]
    return result
