"""The compiled kernels of the fragments and graph stages against the libraries they replace:
distance transform (edt), Gaussian and maximum filters (scipy), seed components (cc3d),
small-fragment merging (a plain Python reference), node sizes (np.unique), value ranges."""

from __future__ import annotations

import cc3d
import edt
import numpy as np
import pytest
from scipy import ndimage as ndi

from pipeline.seg.contacts import block_contacts
from pipeline.seg.distance import distance_transform
from pipeline.seg.filters import gaussian, seeds_from_distance
from pipeline.seg.flood import interior, padded
from pipeline.seg.scratch import scratch
from pipeline.seg.small import small_fragment_roots
from pipeline.seg.valuerange import value_range


def blobs(shape, seed, fraction=0.7):
    rng = np.random.default_rng(seed)
    smooth = ndi.gaussian_filter(rng.random(shape), 2.0)
    return smooth < np.quantile(smooth, fraction)


@pytest.mark.parametrize(
    ("shape", "anisotropy"),
    [((20, 30, 40), (1.0, 1.0, 1.0)), ((12, 25, 31), (40.0, 4.0, 5.0)), ((33, 47), (2.0, 3.0))],
)
def test_distance_transform_equals_edt(shape, anisotropy):
    for seed in range(3):
        mask = blobs(shape, seed)
        np.testing.assert_array_equal(
            distance_transform(mask, anisotropy), edt.edt(mask, anisotropy=anisotropy)
        )


def test_distance_transform_without_background_is_infinite():
    assert np.isinf(distance_transform(np.ones((4, 5, 6), bool), (1.0, 1.0, 1.0))).all()
    assert not distance_transform(np.zeros((4, 5, 6), bool), (1.0, 1.0, 1.0)).any()


@pytest.mark.parametrize("sigmas", [(1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (0.0, 1.5, 0.7)])
def test_gaussian_equals_scipy(sigmas):
    a = np.random.default_rng(1).random((17, 23, 29)).astype(np.float32)
    want = ndi.gaussian_filter(a, sigmas, mode="nearest")
    np.testing.assert_allclose(gaussian(a, sigmas), want, atol=1e-6)
    want2 = ndi.gaussian_filter(a[3], sigmas[1:], mode="nearest")
    np.testing.assert_allclose(gaussian(a[3], sigmas[1:]), want2, atol=1e-6)


@pytest.mark.parametrize("ndim", [2, 3])
def test_seeds_equal_maximum_filter_and_cc3d(ndim):
    shape = (16, 40, 44)[3 - ndim :]
    dist = ndi.gaussian_filter(edt.edt(blobs(shape, 4)), 1.0, mode="nearest").astype(np.float32)
    dist = np.round(dist, 1)  # plateaus: seeds of several voxels
    peaks = (ndi.maximum_filter(dist, size=3, mode="nearest") == dist) & (dist > 0)
    want = cc3d.connected_components(peaks, connectivity=26 if ndim == 3 else 8)
    labels = np.zeros(padded(shape), np.int32)
    rep, where = seeds_from_distance(dist, labels)
    got = interior(labels, ndim)
    assert len(rep) - 1 == want.max()
    np.testing.assert_array_equal(got > 0, want > 0)
    # the same components (up to numbering), numbered by their first voxel, rep = first voxel
    pairs = set(zip(got[got > 0].tolist(), want[want > 0].tolist(), strict=True))
    assert len(pairs) == want.max()
    first = [int(np.flatnonzero(got.ravel() == k)[0]) for k in range(1, len(rep))]
    assert first == rep[1:].tolist() == sorted(first)
    assert where.tolist() == np.flatnonzero(labels > 0).tolist()


def reference_roots(labels, boundary, min_size):
    """The former pure numpy/Python small-fragment merging."""
    sizes = np.bincount(labels.ravel())
    small = (sizes < min_size) & (sizes > 0)
    small[0] = False
    acc: dict = {}
    for d in range(labels.ndim):
        a = [slice(None)] * labels.ndim
        b = [slice(None)] * labels.ndim
        a[d], b[d] = slice(0, -1), slice(1, None)
        la, lb = labels[tuple(a)].ravel(), labels[tuple(b)].ravel()
        va = np.maximum(boundary[tuple(a)], boundary[tuple(b)]).ravel()
        for x, y, v in zip(la.tolist(), lb.tolist(), va.tolist(), strict=True):
            if x != y and x and y and (small[x] or small[y]):
                key = (min(x, y), max(x, y))
                c, s = acc.get(key, (0, 0.0))
                acc[key] = (c + 1, s + v)
    nbrs: dict = {}
    for (u, v), (c, s) in acc.items():
        nbrs.setdefault(u, []).append((s / c, v))
        nbrs.setdefault(v, []).append((s / c, u))
    parent = list(range(len(sizes)))
    size = sizes.tolist()

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for node in np.flatnonzero(small)[np.argsort(sizes[small], kind="stable")].tolist():
        if size[node] >= min_size or find(node) != node:
            continue
        for _, other in sorted(nbrs.get(node, ())):
            r = find(other)
            if r != node:
                parent[node] = r
                size[r] += size[node]
                break
    return np.array([find(i) for i in range(len(sizes))])


@pytest.mark.parametrize("seed", range(3))
def test_small_fragment_merging_equals_reference(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, 60, (6, 7, 8)).repeat(2, axis=2)
    labels[rng.random(labels.shape) < 0.05] = 0
    boundary = rng.random(labels.shape).astype(np.float32)
    want = reference_roots(labels, boundary, 10)
    assert (want != np.arange(len(want))).any()  # something merges
    np.testing.assert_array_equal(small_fragment_roots(labels, boundary, 10), want)


def test_node_sizes_equal_unique_and_cover_the_owned_corner_only():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 9, (7, 8, 9)).astype(np.uint64) * np.uint64(1 << 40)
    values = rng.random(labels.shape).astype(np.float32)
    nodes, edges = block_contacts(labels, values, 4, (6, 7, 8))
    ids, sizes = np.unique(labels[:6, :7, :8], return_counts=True)
    np.testing.assert_array_equal(nodes["id"], ids)
    np.testing.assert_array_equal(nodes["size"], sizes)
    assert (edges["u"] < edges["v"]).all() and edges["hist"].sum() == edges["count"].sum()


def test_contacts_tables_grow_past_their_first_capacity():
    """More labels and pairs than the first hash tables hold (they grow and the scan resumes)."""
    labels = np.arange(40 * 40 * 40, dtype=np.uint64).reshape(40, 40, 40) // np.uint64(2)
    values = np.full(labels.shape, 0.25, np.float32)
    nodes, edges = block_contacts(labels, values, 2)
    assert len(nodes["id"]) == labels.size // 2
    assert edges["count"].sum() == 3 * 40 * 40 * 39 - 40 * 40 * 20
    assert np.allclose(edges["sum"], 0.25 * edges["count"])


def test_value_range_and_scratch():
    a = np.array([[0.5, np.nan], [-0.25, 2.0]], np.float32)
    assert value_range(a) == (-0.25, 2.0, True)
    assert value_range(np.zeros(0, np.float32))[2] is False
    x = scratch("test", (3, 4), np.float32)
    y = scratch("test", (2, 2), np.int64)  # reuses the same memory
    assert x.shape == (3, 4) and y.shape == (2, 2) and np.shares_memory(x, y)
