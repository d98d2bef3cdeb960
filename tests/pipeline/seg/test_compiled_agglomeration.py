"""The compiled agglomeration (``mergeloop``, ``edgeheap``) gives exactly the merge scores of the
pure-Python version it replaced (``agglomeration_reference``): on random graphs with tied scores,
with a threshold, and on the region graph of real FIB data; and its heap pops in
``heapq``'s (score, edge) order."""

from __future__ import annotations

import heapq

import numba
import numpy as np
import pytest

from pipeline.seg.agglomeration import Scoring, agglomerate
from pipeline.seg.edgeheap import new_heap, pop, push
from pipeline.seg.rag import region_contacts
from pipeline.seg.watershed import FragmentParams, fragments_from_boundary
from tests.conftest import shared_file
from tests.pipeline.seg.agglomeration_reference import agglomerate_reference

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
def _heap_order(scores, edges, extra_s, extra_e):
    """Entries (scores[i], edges[i]) heapified (``edges`` a permutation of 0..n-1), then the
    extra entries pushed, then everything popped."""
    order = np.argsort(edges)
    heap = new_heap(scores[order])
    size = scores.size
    for i in range(extra_s.size):
        heap = push(heap, size, extra_s[i], extra_e[i])
        size += 1
    out_s, out_e = np.empty(size), np.empty(size, np.int64)
    for i in range(out_s.size):
        out_s[i], out_e[i] = pop(heap, size)
        size -= 1
    return out_s, out_e


def test_edge_heap_pops_in_heapq_order():
    rng = np.random.default_rng(0)
    s = np.round(rng.random(300), 1)  # many ties in score
    e = rng.permutation(300).astype(np.int64)
    xs, xe = np.round(rng.random(500), 1), rng.integers(0, 300, 500).astype(np.int64)
    got_s, got_e = _heap_order(s, e, xs, xe)
    want = list(zip(s.tolist(), e.tolist(), strict=True))
    heapq.heapify(want)
    for pair in zip(xs.tolist(), xe.tolist(), strict=True):
        heapq.heappush(want, pair)
    want = [heapq.heappop(want) for _ in range(len(want))]
    assert list(zip(got_s.tolist(), got_e.tolist(), strict=True)) == want
