"""Learned agglomeration kernels: the numba tree evaluation equals scikit-learn, and the merge
loop's re-featured edges equal the edges of the merged regions featured from scratch."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from pipeline.seg.edge_features import N_FEATURES, edge_features
from pipeline.seg.learned import agglomerate_learned, contract, fit_ensemble, labelled_examples
from pipeline.seg.learned_loop import learned_merge_loop
from pipeline.seg.tree_ensemble import TreeEnsemble
from pipeline.seg.unionfind import components


def _random_graph(rng, n_nodes=60, n_edges=200, nbins=8):
    u = rng.integers(0, n_nodes, 4 * n_edges)
    v = rng.integers(0, n_nodes, 4 * n_edges)
    pairs = np.unique(np.stack([np.minimum(u, v), np.maximum(u, v)], 1)[u != v], axis=0)
    pairs = pairs[rng.permutation(len(pairs))[:n_edges]]
    hist = rng.integers(0, 6, (len(pairs), nbins)).astype(np.float64)
    hist[:, 0] += 1
    count = hist.sum(1)
    total = (hist * (np.arange(nbins) + 0.5) / nbins).sum(1)
    size = rng.integers(20, 400, n_nodes).astype(np.float64)
    return {"u": pairs[:, 0], "v": pairs[:, 1], "count": count, "sum": total, "hist": hist}, size


def _ensemble(rng, edges, size):
    """A classifier that has learned something: boundary when the mean is high."""
    x = edge_features(
        edges["count"], edges["sum"], edges["hist"], size[edges["u"]], size[edges["v"]]
    )
    y = (x[:, 0] + 0.1 * rng.random(len(x)) > 0.5).astype(np.int64)
    return fit_ensemble(x, y)


def test_numba_trees_equal_sklearn_predict_proba():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, N_FEATURES))
    y = (x[:, 0] + 0.5 * x[:, 3] * x[:, 5] + 0.3 * rng.normal(size=3000) > 0).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, random_state=0)
    clf.fit(x, y)
    test = rng.normal(scale=1.5, size=(5000, N_FEATURES))
    test[::97, 2] = np.nan  # missing values follow the trees' learned direction
    ours = TreeEnsemble.from_sklearn(clf).predict_proba(test)
    np.testing.assert_allclose(ours, clf.predict_proba(test)[:, 1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed, scale", [(1, 1), (2, 1), (3, 100)])
def test_refeatured_edges_equal_merged_regions_from_scratch(seed, scale):
    rng = np.random.default_rng(seed)
    edges, size = _random_graph(rng)
    size *= scale  # 100: regions above the size cap, where only changed edges are rescored
    ens = _ensemble(rng, edges, size)
    n = len(size)
    cnt, tot = edges["count"].copy(), edges["sum"].copy()
    hist, sz = edges["hist"].copy(), size.copy()
    scores, end0, end1, alive = learned_merge_loop(
        n, edges["u"], edges["v"], cnt, tot, hist, sz, ens.arrays(), 0.6
    )
    merged = np.isfinite(scores)
    assert 0 < merged.sum() < len(scores)
    # the regions after the loop, from scratch: components of the merged edges
    label = components(n, edges["u"][merged], edges["v"][merged])
    fresh, fresh_size = contract(edges, size, label)
    live = np.flatnonzero(alive)
    lu, lv = label[end0[live]], label[end1[live]]
    got = {(min(a, b), max(a, b)): e for a, b, e in zip(lu, lv, live, strict=True)}
    assert sorted(got) == sorted(zip(fresh["u"], fresh["v"], strict=True))
    order = np.array([got[(a, b)] for a, b in zip(fresh["u"], fresh["v"], strict=True)])
    np.testing.assert_allclose(cnt[order], fresh["count"])
    np.testing.assert_allclose(hist[order], fresh["hist"])
    x_loop = edge_features(cnt[order], tot[order], hist[order], sz[end0[order]], sz[end1[order]])
    x_new = edge_features(
        fresh["count"], fresh["sum"], fresh["hist"], fresh_size[fresh["u"]], fresh_size[fresh["v"]]
    )
    np.testing.assert_allclose(x_loop, x_new, rtol=1e-12)
    # and no region pair left below the threshold
    assert (ens.predict_proba(x_new) >= 0.6).all()


def test_rescoring_only_changed_edges_above_the_size_cap_changes_nothing():
    rng = np.random.default_rng(6)
    edges, size = _random_graph(rng, 300, 1200)
    size *= 200  # most regions above SIZE_CAP
    ens = _ensemble(rng, edges, size)
    args = (len(size), edges["u"], edges["v"])

    def run(rescore_all):
        stats = [edges[k].copy() for k in ("count", "sum", "hist")] + [size.copy()]
        return learned_merge_loop(*args, *stats, ens.arrays(), np.inf, rescore_all)[0]

    lazy, full = run(False), run(True)
    assert np.isfinite(lazy).sum() > 1000
    np.testing.assert_array_equal(lazy, full)


def test_learned_levels_are_monotone_and_cut_like_the_threshold():
    rng = np.random.default_rng(4)
    edges, size = _random_graph(rng, 200, 700)
    ens = _ensemble(rng, edges, size)
    args = (len(size), edges["u"], edges["v"], edges["count"], edges["sum"], edges["hist"], size)
    full = agglomerate_learned(*args, ens)
    part = agglomerate_learned(*args, ens, threshold=0.5)
    below = full < 0.5
    np.testing.assert_array_equal(full[below], part[below])
    assert np.isinf(part[~below]).all()


def test_labelled_examples_use_majority_truth():
    rng = np.random.default_rng(5)
    edges, size = _random_graph(rng, 10, 20)
    truth = np.array([1, 1, 2, 2, 0, 3, 3, 3, 1, 2], np.uint64)
    x, y = labelled_examples(edges, size, truth)
    tu, tv = truth[edges["u"]], truth[edges["v"]]
    keep = (tu != 0) & (tv != 0)
    assert x.shape == (keep.sum(), N_FEATURES)
    np.testing.assert_array_equal(y, tu[keep] != tv[keep])
