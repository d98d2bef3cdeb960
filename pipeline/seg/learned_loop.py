"""The compiled merge loop of learned agglomeration (GALA / NeuroProof style): like
``mergeloop`` (the same indexed heap, pair table and incidence lists), but after every merge
all edges of the merged region are re-featured (their sums and the new region size; see
``edge_features``) and rescored by the boosted trees (``tree_ensemble``), since the region's
size enters every one of its edges' features. An edge's score is the predicted probability
that its two regions are different neurons, so the threshold is a probability.

Sizes enter the features capped (``SIZE_CAP``): once the surviving region was already that big,
only the edges whose statistics or far end changed (combined edges, edges moved over from the
other region) get new features, so only those are rescored (the others would score the same).
"""

from __future__ import annotations

import numba
import numpy as np

from pipeline.seg.edge_features import N_FEATURES, SIZE_CAP, fill_features
from pipeline.seg.edgeheap import new_heap, pop, remove, rescore
from pipeline.seg.pairtable import grown, new_pairs, pair_key, pair_slot
from pipeline.seg.tree_ensemble import ensemble_proba


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
def edge_score(e, end0, end1, cnt, tot, hist, size, ens, buf):
    """The learned score of edge ``e`` from its current sums and its regions' sizes."""
    fill_features(cnt[e], tot[e], hist[e], size[end0[e]], size[end1[e]], buf)
    return ensemble_proba(ens, buf)


@numba.njit(cache=True, nogil=True)
def _fold(a, b, lists, edges, stats, queue, pairs):
    """Fold node ``b`` into ``a``: an edge (b, n) moves to (a, n), or is added into a's edge to
    n (and leaves the heap). Returns the heap size, the pair table and its entry count."""
    head, last, rec_next, deg = lists
    alive, end0, end1, member_next, member_tail, dirty = edges
    cnt, tot, hist = stats
    heap, pos, size = queue
    table, n_pairs, n_nodes = pairs
    r = head[b]
    while r != -1:
        r_next = rec_next[r]
        f = r >> 1
        if alive[f]:
            n = end1[f] if end0[f] == b else end0[f]
            key = pair_key(a, n, n_nodes)
            s = pair_slot(table, key)
            if table[s, 0] == 0:
                end0[f], end1[f] = a, n
                dirty[f] = 1
                deg[a] += 1
                table[s, 0], table[s, 1] = key, f
                n_pairs += 1
                if 2 * n_pairs > table.shape[0]:
                    table = grown(table)
                rec_next[r] = -1
                if head[a] == -1:
                    head[a] = r
                else:
                    rec_next[last[a]] = r
                last[a] = r
            else:
                g = np.int64(table[s, 1])
                dirty[g] = 1
                alive[f] = 0
                deg[n] -= 1
                cnt[g] += cnt[f]
                tot[g] += tot[f]
                hist[g] += hist[f]
                member_next[member_tail[g]] = f
                member_tail[g] = member_tail[f]
                remove(heap, pos, size, f)
                size -= 1
        r = r_next
    head[b], last[b] = -1, -1
    return size, table, n_pairs


@numba.njit(cache=True, nogil=True)
def _rescore_node(a, every, lists, edges, stats, queue, ens, buf):
    """Rescore the live edges of ``a`` (``every`` one, or only those marked dirty), dropping the
    records of dead edges from its list."""
    head, last, rec_next, _ = lists
    alive, end0, end1, _, _, dirty = edges
    cnt, tot, hist, size = stats
    heap, pos, n = queue
    prev = -1
    r = head[a]
    while r != -1:
        r_next = rec_next[r]
        f = r >> 1
        if alive[f]:
            if every or dirty[f]:
                s = edge_score(f, end0, end1, cnt, tot, hist, size, ens, buf)
                rescore(heap, pos, n, f, s)
                dirty[f] = 0
            prev = r
        elif prev == -1:
            head[a] = r_next
        else:
            rec_next[prev] = r_next
        r = r_next
    last[a] = prev


@numba.njit(cache=True, nogil=True)
def learned_merge_loop(n_nodes, u, v, cnt, tot, hist, size, ens, threshold, rescore_all=False):
    """Agglomerate with learned scores; ``cnt``, ``tot``, ``hist`` and ``size`` are updated in
    place. Returns the merge score (running maximum of merged scores) of every edge, +inf for
    edges whose endpoints never joined, and the final graph: each edge's ends and whether it is
    alive (edges added into another one, or merged, are not). ``rescore_all``: rescore every
    edge of a merged region even above the size cap (the same result, slower; for tests)."""
    n_edges = u.size
    result = np.full(n_edges, np.inf)
    end0, end1 = u.astype(np.int64), v.astype(np.int64)
    alive = np.ones(n_edges, np.uint8)
    member_next = np.full(n_edges, -1, np.int64)
    member_tail = np.arange(n_edges)
    lists = incidence_lists(n_nodes, end0, end1)
    deg = lists[3]
    table = pair_table(n_nodes, end0, end1)
    n_pairs = n_edges
    buf = np.empty(N_FEATURES)
    score = np.empty(n_edges)
    for e in range(n_edges):
        score[e] = edge_score(e, end0, end1, cnt, tot, hist, size, ens, buf)
    heap, pos = new_heap(score)
    n_heap = n_edges
    level = -np.inf
    edges = (alive, end0, end1, member_next, member_tail, np.zeros(n_edges, np.uint8))
    while n_heap > 0:
        s, e = pop(heap, pos, n_heap)
        n_heap -= 1
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
        every = (
            rescore_all or size[a] < SIZE_CAP
        )  # a's capped size, in all its edges' features, changes
        size[a] += size[b]
        n_heap, table, n_pairs = _fold(
            a, b, lists, edges, (cnt, tot, hist), (heap, pos, n_heap), (table, n_pairs, n_nodes)
        )
        stats = (cnt, tot, hist, size)
        _rescore_node(a, every, lists, edges, stats, (heap, pos, n_heap), ens, buf)
    return result, end0, end1, alive
