"""Per-block segmentation algorithms on numpy arrays: contacts, agglomeration, union-find,
watershed fragments, seed-voxel ids."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluate import evaluate_arrays
from pipeline.seg.agglomeration import Scoring, agglomerate
from pipeline.seg.ids import id_blocks, id_coords, ids_from_local, ids_valid
from pipeline.seg.rag import histogram_quantile, reduce_edges, region_contacts
from pipeline.seg.unionfind import StreamingUnionFind, components
from pipeline.seg.watershed import (
    FragmentParams,
    fragments_from_boundary,
    merge_small_fragments,
    watershed_fragments,
)
from tests.support.labels import voronoi


def brute_contacts(labels, values, owned):
    out = {}
    for d in range(3):
        for x in np.ndindex(*owned):
            y = list(x)
            y[d] += 1
            if y[d] >= labels.shape[d]:
                continue
            a, b = labels[x], labels[tuple(y)]
            if a == b:
                continue
            key = (min(a, b), max(a, b))
            val = max(values[x], values[tuple(y)])
            c, s = out.get(key, (0, 0.0))
            out[key] = (c + 1, s + val)
    return out


def test_contacts_match_brute_force_and_count_faces_once():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, (6, 7, 5)).astype(np.uint64)
    values = rng.random((6, 7, 5)).astype(np.float32)
    owned = (5, 6, 4)
    got = region_contacts(labels, values, nbins=8, owned=owned)
    want = brute_contacts(labels, values, owned)
    assert len(got["u"]) == len(want)
    for u, v, c, s, h in zip(
        got["u"], got["v"], got["count"], got["sum"], got["hist"], strict=True
    ):
        assert want[(u, v)][0] == c
        assert want[(u, v)][1] == pytest.approx(s, rel=1e-6)
        assert h.sum() == c
    # tiling the array into owned corners counts every face pair exactly once
    whole = region_contacts(labels, values, nbins=0)
    parts = []
    for z0 in (0, 3):
        for y0 in (0, 4):
            sub_l = labels[z0 : z0 + 4, y0 : y0 + 5]
            sub_v = values[z0 : z0 + 4, y0 : y0 + 5]
            own = (min(3, 6 - z0), min(4, 7 - y0), 5)
            parts.append(region_contacts(sub_l, sub_v, nbins=0, owned=own))
    merged = reduce_edges(
        *(np.concatenate([p[k] for p in parts]) for k in ("u", "v", "count", "sum"))
    )
    np.testing.assert_array_equal(merged["u"], whole["u"])
    np.testing.assert_array_equal(merged["count"], whole["count"])
    np.testing.assert_allclose(merged["sum"], whole["sum"])


def test_histogram_quantile():
    hist = np.zeros((2, 10))
    hist[0, 2] = 10  # all values in [0.2, 0.3)
    hist[1, [1, 8]] = [1, 3]
    assert histogram_quantile(hist, 0.5)[0] == pytest.approx(0.25)
    assert 0.8 <= histogram_quantile(hist, 0.5)[1] < 0.9
    assert histogram_quantile(hist, 0.0)[1] < 0.2


def naive_agglomeration(n, edges, stats, score_fn):
    """Reference: recompute everything after every merge (O(E^2)), running-max levels."""
    cluster = list(range(n))
    level, result = -np.inf, {}
    while True:
        pair_stats = {}
        for (a, b), st in zip(edges, stats, strict=True):
            ca, cb = cluster[a], cluster[b]
            if ca == cb:
                continue
            key = (min(ca, cb), max(ca, cb))
            prev = pair_stats.get(key)
            pair_stats[key] = st.copy() if prev is None else prev + st
        if not pair_stats:
            break
        best = min(pair_stats, key=lambda k: (score_fn(pair_stats[k]), k))
        level = max(level, score_fn(pair_stats[best]))
        ca, cb = best
        for a, b in edges:
            if {cluster[a], cluster[b]} == {ca, cb}:
                result[(a, b)] = level
        cluster = [ca if c == cb else c for c in cluster]
    return result


@pytest.mark.parametrize("scoring", [Scoring("mean"), Scoring("quantile", 0.5)])
def test_agglomeration_matches_naive_reference(scoring):
    rng = np.random.default_rng(3)
    n = 12
    pairs = sorted({tuple(sorted(rng.choice(n, 2, replace=False))) for _ in range(30)})
    u = np.array([p[0] for p in pairs])
    v = np.array([p[1] for p in pairs])
    count = rng.integers(1, 20, len(pairs))
    hist = np.zeros((len(pairs), 16), np.int64)
    for i, c in enumerate(count):
        np.add.at(hist[i], rng.integers(0, 16, c), 1)
    total = (hist * (np.arange(16) + 0.5) / 16).sum(axis=1)
    got = agglomerate(n, u, v, count, total, hist, scoring)
    stats = [
        np.concatenate([[c, t], h]).astype(float)
        for c, t, h in zip(count, total, hist, strict=True)
    ]
    if scoring.kind == "mean":

        def fn(st):
            return st[1] / st[0]
    else:

        def fn(st):
            return float(histogram_quantile(st[2:][None], scoring.q)[0])

    want = naive_agglomeration(n, pairs, stats, fn)
    for i, p in enumerate(pairs):
        assert got[i] == pytest.approx(want[p]), p
    # cuts at increasing thresholds are nested partitions
    prev = None
    for t in np.unique(got[np.isfinite(got)]):
        cut = components(n, u[got <= t], v[got <= t])
        if prev is not None:
            for c in np.unique(prev):
                assert len(np.unique(cut[prev == c])) == 1
        prev = cut


def test_agglomeration_threshold_stops_and_reports_inf():
    u, v = np.array([0, 1]), np.array([1, 2])
    scores = agglomerate(3, u, v, np.array([1, 1]), np.array([0.1, 0.9]), threshold=0.5)
    assert scores[0] == pytest.approx(0.1)
    assert np.isinf(scores[1])


def test_streaming_union_find_equals_components():
    rng = np.random.default_rng(5)
    n = 500
    u, v = rng.integers(0, n, 400), rng.integers(0, n, 400)
    uf = StreamingUnionFind(n)
    for i in range(0, 400, 37):
        uf.union(u[i : i + 37], v[i : i + 37])
    ref = components(n, u, v)
    got = uf.labels()
    # same partition: a bijection between labels
    pairs = set(zip(ref.tolist(), got.tolist(), strict=True))
    assert len(pairs) == len(np.unique(ref)) == len(np.unique(got))
    # the root is the smallest member
    for r in np.unique(got):
        assert r == np.flatnonzero(got == r).min()


def test_watershed_recovers_cells_and_handles_degenerate_maps():
    lab, bnd = voronoi((24, 36, 36), 12)
    frag = fragments_from_boundary(bnd, FragmentParams(min_size=20))
    assert frag.dtype == np.uint64 and frag.min() >= 1
    # an over-segmentation with (almost) no merges: each fragment lies in one cell
    scores = evaluate_arrays(frag, lab)
    assert scores["vi_merge"] < 0.02
    assert len(np.unique(frag)) >= lab.max()
    # all boundary: no seeds, documented result is all zeros
    assert not fragments_from_boundary(np.ones((8, 8, 8), np.float32)).any()
    # no boundary at all: everything is one (or a few) fragments, none empty
    flat = fragments_from_boundary(np.zeros((8, 8, 8), np.float32))
    assert flat.min() >= 1 and len(np.unique(flat)) <= 2


def test_2d_mode_keeps_fragments_inside_sections():
    _, bnd = voronoi((6, 32, 32), 8, seed=2)
    labels, rep = watershed_fragments(bnd, FragmentParams(mode="2d", min_size=10))
    for k in np.unique(labels[labels > 0])[:50]:
        zs = np.unique(np.nonzero(labels == k)[0])
        assert len(zs) == 1
        assert rep[k] // (32 * 32) == zs[0]  # the seed lies in that section


def test_small_fragments_join_their_lowest_boundary_neighbour():
    labels = np.ones((4, 4, 8), np.int64)
    labels[:, :, 4:] = 2
    labels[0, 0, 0] = 3  # a 1-voxel fragment inside 1
    labels[0, 0, 7] = 4  # and one inside 2
    bnd = np.zeros(labels.shape, np.float32)
    bnd[:, :, 3:5] = 1.0
    out = merge_small_fragments(labels, bnd, min_size=2)
    assert out[0, 0, 0] == 1 and out[0, 0, 7] == 2
    assert set(np.unique(out)) == {1, 2}


def test_seed_voxel_ids_roundtrip():
    shape = (10, 20, 30)
    local_shape, offset = (4, 5, 6), (3, 7, 11)
    flat = np.array([0, 7, 119])
    ids = ids_from_local(flat, local_shape, offset, shape)
    coords = np.stack(id_coords(ids, shape), axis=1)
    want = np.stack(np.unravel_index(flat, local_shape), axis=1) + np.array(offset)
    np.testing.assert_array_equal(coords, want)
    assert ids.min() >= 1
    assert ids_valid(
        ids, shape, offset, [o + s for o, s in zip(offset, local_shape, strict=True)]
    ).all()
    assert not ids_valid(np.array([0, 10 * 20 * 30 + 1], np.uint64), shape, (0, 0, 0), shape).any()
    blocks = id_blocks(ids, shape, (5, 10, 10))
    assert blocks.tolist() == [
        np.ravel_multi_index(tuple(c // b for c, b in zip(x, (5, 10, 10), strict=True)), (2, 2, 3))
        for x in want
    ]


def test_agglomeration_is_deterministic_with_ties():
    u, v = np.array([0, 2, 4, 1]), np.array([1, 3, 5, 2])
    runs = [agglomerate(6, u, v, np.ones(4), np.array([0.3, 0.3, 0.3, 0.6])) for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_allclose(runs[0], [0.3, 0.3, 0.3, 0.6])
