"""The compiled agglomeration (``mergeloop``, ``edgeheap``) gives exactly the merge scores of the
pure-Python version it replaced (``benchmarks/reference/agglomeration.py``): on random graphs with tied scores,
with a threshold, with fractional or very large histograms, and on the region graph of real FIB
data; its heap pops the smallest (score, edge) through rescoring and removals; its edge-verified
pair table finds the live edge of a pair after edges moved or died; and its compiled quantiles
are the floats of ``rag.histogram_quantile``."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from benchmarks.reference.agglomeration import agglomerate_reference
from pipeline.seg.agglomeration import Scoring, agglomerate, merge_histograms
from pipeline.seg.edgeheap import new_heap, pop, remove, rescore
from pipeline.seg.mergeloop import histogram_quantiles
from pipeline.seg.pairtable import find_edge, grown_edges, pair_hash, set_slot
from pipeline.seg.rag import histogram_quantile, region_contacts
from pipeline.seg.watershed import FragmentParams, fragments_from_boundary
from tests.conftest import shared_file

SCORINGS = [Scoring("mean"), Scoring("quantile", 0.5), Scoring("quantile", 0.85)]


def random_graph(rng: np.random.Generator, n: int, m: int, nbins: int = 16, ties: bool = False):
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = a != b
    keys = np.unique(np.minimum(a, b)[keep] * n + np.maximum(a, b)[keep])
    keys = keys[rng.permutation(len(keys))]
    u, v = keys // n, keys % n
    count = rng.integers(1, 30, len(u))
    hist = np.zeros((len(u), nbins), np.int64)
    for i, c in enumerate(count):
        np.add.at(hist[i], rng.integers(0, nbins, c), 1)
    total = (hist * (np.arange(nbins) + 0.5) / nbins).sum(axis=1)
    if ties:  # many equal scores: the order of edges decides
        total = np.round(total * 2) / 2
    return u, v, count, total, hist


@pytest.mark.parametrize("seed", range(12))
def test_compiled_equals_reference_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 200))
    u, v, count, total, hist = random_graph(rng, n, int(rng.integers(1, 5 * n)), ties=seed % 2 == 0)
    for scoring in SCORINGS:
        for threshold in (np.inf, 0.5):
            got = agglomerate(n, u, v, count, total, hist, scoring, threshold)
            want = agglomerate_reference(n, u, v, count, total, hist, scoring, threshold)
            np.testing.assert_array_equal(got, want)
            if threshold == np.inf:  # all of a connected graph merges
                assert np.isfinite(got).all()


def test_compiled_equals_reference_on_a_real_region_graph():
    import h5py

    path = shared_file("gala_fib_example/gala_fib_train.h5")
    with h5py.File(path, "r") as f:
        boundary = f["volumes/predictions/boundary"][:]
    frag = fragments_from_boundary(boundary, FragmentParams(min_size=20))
    edges = region_contacts(frag, boundary, nbins=16)
    keep = edges["u"] != 0
    ids = np.unique(np.concatenate([edges["u"][keep], edges["v"][keep]]))
    u, v = np.searchsorted(ids, edges["u"][keep]), np.searchsorted(ids, edges["v"][keep])
    count, total, hist = edges["count"][keep], edges["sum"][keep], edges["hist"][keep]
    assert len(u) > 1000
    for scoring in SCORINGS[:2]:
        got = agglomerate(len(ids), u, v, count, total, hist, scoring)
        want = agglomerate_reference(len(ids), u, v, count, total, hist, scoring)
        np.testing.assert_array_equal(got, want)
        assert np.isfinite(got).sum() > len(ids) // 2


@numba.njit(cache=True)
def _heap_run(scores, ops, edges, values):
    """Apply ``ops`` (0: pop, 1: rescore edge to value, 2: remove edge) to the heap of
    ``scores``; return the popped (score, edge) pairs, -1 for ops that do not pop."""
    heap, pos = new_heap(scores)
    size = scores.size
    out_s, out_e = np.full(ops.size, -1.0), np.full(ops.size, -1, np.int64)
    for i in range(ops.size):
        if ops[i] == 0 and size > 0:
            out_s[i], out_e[i] = pop(heap, pos, size)
            size -= 1
        elif ops[i] == 1 and pos[edges[i]] >= 0:
            rescore(heap, pos, size, edges[i], values[i])
        elif ops[i] == 2 and pos[edges[i]] >= 0:
            remove(heap, pos, size, edges[i])
            size -= 1
    return out_s, out_e


def test_edge_heap_pops_the_smallest_score_then_edge():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(400), 1)  # many ties in score
    ops = rng.choice(3, 3000, p=[0.3, 0.5, 0.2])
    edges = rng.integers(0, 400, 3000)
    values = np.round(rng.random(3000), 1)
    got_s, got_e = _heap_run(scores, ops, edges, values)
    live = dict(enumerate(scores.tolist()))  # the reference: the min over a dict
    for i, op in enumerate(ops.tolist()):
        e = int(edges[i])
        if op == 0 and live:
            best = min(live.items(), key=lambda item: (item[1], item[0]))
            assert (got_s[i], got_e[i]) == (best[1], best[0])
            del live[best[0]]
        elif op == 1 and e in live:
            live[e] = float(values[i])
        elif op == 2 and e in live:
            del live[e]


def test_fractional_and_large_histograms_merge_as_the_reference():
    rng = np.random.default_rng(5)
    u, v, count, total, hist = random_graph(rng, 120, 500, ties=True)
    assert merge_histograms(hist).dtype == np.uint32  # counts: added up as uint32
    for h in (hist * 0.37, hist << 30):  # fractions; counts whose sums pass 2**32: float64
        assert merge_histograms(h).dtype == np.float64
        for scoring in SCORINGS[1:]:
            got = agglomerate(120, u, v, count, total, h, scoring)
            want = agglomerate_reference(120, u, v, count, total, h, scoring)
            np.testing.assert_array_equal(got, want)


def test_compiled_quantiles_are_the_floats_of_histogram_quantile():
    rng = np.random.default_rng(3)
    for nb in (1, 2, 16):
        counts = rng.integers(0, 4, (300, nb)) * (rng.random((300, 1)) < 0.8)  # empty rows too
        fractions = np.round(rng.random((300, nb)) * 3, 1)
        for hist in (counts.astype(np.uint32), fractions):
            for q in (0.0, 0.1, 0.5, 0.85, 1.0):
                want = histogram_quantile(hist, q)
                np.testing.assert_array_equal(histogram_quantiles(hist, q), want)


@numba.njit(cache=True)
def _table_insert(table, n_entries, n, ends, edges):
    """Insert ``edges`` (under their current ends) into the pair table, growing it as the merge
    loop does; return the table."""
    for e in edges:
        if 2 * (n_entries + 1) > table.size:
            table = grown_edges(table)
        h = pair_hash(ends[e, 0], ends[e, 1], n)
        s, g = find_edge(table, h, ends[e, 0], ends[e, 1], ends)
        if g == -1:
            set_slot(table, s, h, e)
            n_entries += 1
    return table


@numba.njit(cache=True)
def _table_find(table, n, ends, pairs):
    out = np.empty(len(pairs), np.int64)
    for i in range(len(pairs)):
        a, b = pairs[i, 0], pairs[i, 1]
        out[i] = find_edge(table, pair_hash(a, b, n), a, b, ends)[1]
    return out


def test_pair_table_finds_the_live_edge_after_moves_and_deaths():
    rng = np.random.default_rng(7)
    n = 300
    keys = rng.choice(n * n, 4000, replace=False)
    pairs = np.stack([keys // n, keys % n], axis=1)
    pairs = pairs[pairs[:, 0] < pairs[:, 1]].astype(np.int32)  # distinct unordered pairs
    m = len(pairs) // 2  # the first half are the edges; the rest, pairs that edges move to
    ends = pairs[:m].copy()
    table = _table_insert(np.zeros(16, np.uint64), 0, n, ends, np.arange(m))
    moved = rng.choice(m, m // 3, replace=False)
    ends[moved] = pairs[m : m + len(moved)]
    table = _table_insert(table, m, n, ends, moved)
    dead = rng.choice(m, m // 4, replace=False)
    ends[dead, 0] = -1
    want = {(min(a, b), max(a, b)): e for e, (a, b) in enumerate(ends.tolist()) if a >= 0}
    both = np.concatenate([pairs, pairs[:, ::-1]])
    got = _table_find(table, n, ends, both)
    for (a, b), g in zip(both.tolist(), got.tolist(), strict=True):
        assert g == want.get((min(a, b), max(a, b)), -1)
