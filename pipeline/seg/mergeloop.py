"""The compiled merge loop of hierarchical agglomeration (see ``agglomeration``): a priority queue
of edges (``edgeheap``), and merge bookkeeping in flat arrays:

* the edges of a node: a linked list of incidence records (record ``2e`` is edge ``e`` seen from
  its first end, ``2e + 1`` from its second), so folding one node into another moves records in
  O(1) each; records of dead edges are dropped when a list is next walked;
* which edge joins two live nodes: a hash table keyed by the node pair (``pairtable``), only
  ever inserted into. An entry goes stale only when its edge dies, and an edge dies only when
  one of its two nodes does (contracted, or folded into another node), so the entry of a pair
  of live nodes is always current and a pair of live nodes is never inserted twice;
* a node's degree (its number of live neighbours), which picks the node that survives a merge
  (the one with more neighbours, as in the pure-Python version, so ties break alike);
* the input edges an edge stands for: singly linked lists, concatenated in O(1).
"""

from __future__ import annotations

import numba
import numpy as np

from pipeline.seg.edgeheap import new_heap, pop, remove, rescore
from pipeline.seg.pairtable import grown, new_pairs, pair_key, pair_slot


@numba.njit(cache=True, nogil=True)
def _row_quantile(row, q):
    """Quantile ``q`` of one histogram row, as ``rag.histogram_quantile`` computes it (the same
    sequential cumulative sums, so the same floats)."""
    nb = row.shape[0]
    total = 0.0
    for j in range(nb):
        total += row[j]
    target = q * total
    c = 0.0
    below = 0.0
    i = -1
    for j in range(nb):
        c += row[j]
        if c >= target:
            i = j
            break
        below = c
    if i == -1:  # not reached (target <= total); as searchsorted past the end, then clipped
        i = nb - 1
        below = 0.0
        for j in range(nb - 1):
            below += row[j]
    inside = row[i]
    frac = (target - below) / inside if inside > 0 else 0.5
    if 0.0 > frac:
        frac = 0.0
    if 1.0 < frac:
        frac = 1.0
    return (i + frac) / nb


@numba.njit(cache=True, nogil=True)
def incidence_lists(n_nodes, end0, end1):
    """Each node's list of incidence records (head, last, next) and its degree."""
    n_rec = 2 * end0.size
    head = np.full(n_nodes, -1, np.int64)
    last = np.full(n_nodes, -1, np.int64)
    nxt = np.full(n_rec, -1, np.int64)
    deg = np.zeros(n_nodes, np.int64)
    for r in range(n_rec):
        node = end0[r >> 1] if r & 1 == 0 else end1[r >> 1]
        if head[node] == -1:
            head[node] = r
        else:
            nxt[last[node]] = r
        last[node] = r
        deg[node] += 1
    return head, last, nxt, deg


@numba.njit(cache=True, nogil=True)
def pair_table(n_nodes, end0, end1):
    """The pair hash table (a node pair -> its edge) of the initial edges."""
    table = new_pairs(max(16, 1 << int(np.ceil(np.log2(2 * end0.size + 1)))))
    for e in range(end0.size):
        key = pair_key(end0[e], end1[e], n_nodes)
        s = pair_slot(table, key)
        table[s, 0], table[s, 1] = key, e
    return table


@numba.njit(cache=True, nogil=True)
def _combine(g, f, cnt, tot, hist, use_hist, q, member_next, member_tail):
    """Fold edge ``f``'s statistics and members into edge ``g``; return ``g``'s new score."""
    cnt[g] += cnt[f]
    tot[g] += tot[f]
    member_next[member_tail[g]] = f
    member_tail[g] = member_tail[f]
    if use_hist:
        hist[g] += hist[f]
        return _row_quantile(hist[g], q)
    return tot[g] / cnt[g]


@numba.njit(cache=True, nogil=True)
def _fold(a, b, g_state, edge_state, stats, queue, pairs):
    """Fold node ``b`` into node ``a``: an edge (b, n) either moves to (a, n) or, when a already
    has an edge to n, is combined into it (and taken off the heap) and rescored. Returns the
    heap's size, and the pair table (all possibly grown) and its number of entries."""
    head, last, rec_next, deg = g_state
    alive, end0, end1, score, member_next, member_tail = edge_state
    cnt, tot, hist, use_hist, q = stats
    heap, pos, size = queue
    table, n_pairs, n_nodes = pairs
    moved_head, moved_last = -1, -1
    r = head[b]
    while r != -1:
        r_next = rec_next[r]
        f = r >> 1
        if alive[f]:
            n = end1[f] if end0[f] == b else end0[f]
            key = pair_key(a, n, n_nodes)
            s = pair_slot(table, key)
            if table[s, 0] == 0:  # a has no edge to n: f moves to (a, n)
                end0[f], end1[f] = a, n
                deg[a] += 1
                table[s, 0], table[s, 1] = key, f
                n_pairs += 1
                if 2 * n_pairs > table.shape[0]:
                    table = grown(table)
                rec_next[r] = -1
                if moved_head == -1:
                    moved_head = r
                else:
                    rec_next[moved_last] = r
                moved_last = r
            else:
                g = np.int64(table[s, 1])
                alive[f] = 0
                deg[n] -= 1
                score[g] = _combine(g, f, cnt, tot, hist, use_hist, q, member_next, member_tail)
                remove(heap, pos, size, f)
                size -= 1
                rescore(heap, pos, size, g, score[g])
        r = r_next
    if moved_head != -1:
        if head[a] == -1:
            head[a] = moved_head
        else:
            rec_next[last[a]] = moved_head
        last[a] = moved_last
    head[b], last[b] = -1, -1
    return size, table, n_pairs


@numba.njit(cache=True, nogil=True)
def merge_loop(n_nodes, u, v, cnt, tot, hist, use_hist, q, score, threshold):
    """Agglomerate (see ``agglomeration.agglomerate``); ``cnt``, ``tot``, ``hist`` and ``score``
    are updated in place. Returns the merge score of every edge (+inf: never merged)."""
    n_edges = u.size
    result = np.full(n_edges, np.inf)
    end0, end1 = u.astype(np.int64), v.astype(np.int64)
    alive = np.ones(n_edges, np.uint8)
    member_next = np.full(n_edges, -1, np.int64)
    member_tail = np.arange(n_edges)
    head, last, rec_next, deg = incidence_lists(n_nodes, end0, end1)
    table = pair_table(n_nodes, end0, end1)
    n_pairs = n_edges
    heap, pos = new_heap(score)
    size = n_edges
    level = -np.inf
    while size > 0:
        s, e = pop(heap, pos, size)
        size -= 1
        if s >= threshold:
            break
        level = max(level, s)
        alive[e] = 0
        k = e
        while k != -1:
            result[k] = level
            k = member_next[k]
        a, b = end0[e], end1[e]
        deg[a] -= 1
        deg[b] -= 1
        if deg[a] < deg[b]:
            a, b = b, a
        size, table, n_pairs = _fold(
            a,
            b,
            (head, last, rec_next, deg),
            (alive, end0, end1, score, member_next, member_tail),
            (cnt, tot, hist, use_hist, q),
            (heap, pos, size),
            (table, n_pairs, n_nodes),
        )
    return result
