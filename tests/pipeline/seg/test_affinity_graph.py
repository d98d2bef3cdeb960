"""Affinities in the region graph and the fragments: the face of (x, x + e_d) takes the
affinity of that face under the model library's offset convention (pinned against
``models.volumetric.targets.affinities``), the graph's statistics equal a numpy reference and
add up blockwise, and the affinity watershed gives every voxel to a seed of best bottleneck."""

from __future__ import annotations

import heapq

import numpy as np
import pytest
from scipy import ndimage as ndi

from models.volumetric.targets import affinities
from pipeline.seg.affinity_watershed import affinity_basins, face_levels
from pipeline.seg.contacts import block_contacts, face_channels
from pipeline.seg.watershed import FragmentParams
from tests.support.affinity_faces import reference_faces

NN_MINUS = [[-1, 0, 0], [0, -1, 0], [0, 0, -1], [0, -3, -3]]
NN_PLUS = [[0, 0, 1], [0, 1, 0], [1, 0, 0]]


def cells(shape, n, seed):
    """Random Voronoi-like cells (uint64 labels >= 1)."""
    rng = np.random.default_rng(seed)
    points = np.stack([rng.integers(0, s, n) for s in shape], axis=1)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1)
    d = ((grid[..., None, :] - points) ** 2).sum(-1)
    return (d.argmin(-1) + 1).astype(np.uint64)


@pytest.mark.parametrize("offsets", [NN_MINUS, NN_PLUS])
def test_face_channels_follow_the_targets_convention(offsets):
    """Affinities of a finer labelling: an edge's sum counts exactly the faces where the fine
    labels differ, which holds only when each face reads its own affinity."""
    coarse = cells((10, 12, 14), 6, 0)
    fine = cells((10, 12, 14), 40, 1)
    affs, _ = affinities(fine, offsets, ignore_label=None)
    _, edges = block_contacts(coarse, affs, 0, faces=face_channels(offsets))
    for u, v, cnt, tot in zip(edges["u"], edges["v"], edges["count"], edges["sum"], strict=True):
        lo, hi = [slice(None)] * 3, [slice(None)] * 3
        want = 0
        for d in range(3):
            lo, hi = [slice(None)] * 3, [slice(None)] * 3
            lo[d], hi[d] = slice(0, -1), slice(1, None)
            a, b = coarse[tuple(lo)], coarse[tuple(hi)]
            pair = ((a == u) & (b == v)) | ((a == v) & (b == u))
            want += int((fine[tuple(lo)] != fine[tuple(hi)])[pair].sum())
        assert tot == want and cnt > 0
    assert face_channels(NN_MINUS) == ((0, 1), (1, 1), (2, 1))
    assert face_channels(NN_PLUS) == ((2, 0), (1, 0), (0, 0))


def test_affinity_faces_equal_numpy_and_add_up_blockwise():
    labels = cells((12, 16, 18), 12, 2)
    rng = np.random.default_rng(3)
    affs = rng.random((4, *labels.shape)).astype(np.float32)
    faces = face_channels(NN_MINUS)
    want = reference_faces(labels, affs, NN_MINUS)
    _, edges = block_contacts(labels, affs, 16, faces=faces)
    got = {
        (u, v): (c, s)
        for u, v, c, s in zip(edges["u"], edges["v"], edges["count"], edges["sum"], strict=True)
    }
    assert got.keys() == want.keys()
    for k, (c, s) in want.items():
        assert got[k][0] == c and got[k][1] == pytest.approx(s, rel=1e-6)
    assert (edges["hist"].sum(1) == edges["count"]).all()
    # blocks: each reads its corner grown by one voxel on the + side and owns the corner
    blocks = {}
    for z0 in range(0, 12, 5):
        for y0 in range(0, 16, 7):
            for x0 in range(0, 18, 6):
                own = (min(5, 12 - z0), min(7, 16 - y0), min(6, 18 - x0))
                sl = tuple(slice(b, b + o + 1) for b, o in zip((z0, y0, x0), own, strict=True))
                _, e = block_contacts(labels[sl], affs[(slice(None), *sl)], 16, own, faces)
                for u, v, c, s, h in zip(
                    e["u"], e["v"], e["count"], e["sum"], e["hist"], strict=True
                ):
                    c0, s0, h0 = blocks.get((u, v), (0, 0.0, 0))
                    blocks[(u, v)] = (c0 + c, s0 + s, h0 + h)
    assert blocks.keys() == got.keys()
    for i, k in enumerate(zip(edges["u"], edges["v"], strict=True)):
        assert blocks[k][0] == edges["count"][i]
        assert blocks[k][1] == pytest.approx(edges["sum"][i], rel=1e-9)
        np.testing.assert_array_equal(blocks[k][2], edges["hist"][i])


def test_boundary_faces_unchanged_by_the_affinity_mode():
    labels = cells((8, 9, 10), 5, 4)
    b = np.random.default_rng(5).random(labels.shape).astype(np.float32)
    _, edges = block_contacts(labels, b, 8)
    for i, (u, v) in enumerate(zip(edges["u"], edges["v"], strict=True)):
        total, count = 0.0, 0
        for d in range(3):
            lo, hi = [slice(None)] * 3, [slice(None)] * 3
            lo[d], hi[d] = slice(0, -1), slice(1, None)
            a, c = labels[tuple(lo)], labels[tuple(hi)]
            pair = ((a == u) & (c == v)) | ((a == v) & (c == u))
            total += float(np.maximum(b[tuple(lo)], b[tuple(hi)])[pair].sum())
            count += int(pair.sum())
        assert edges["count"][i] == count and edges["sum"][i] == pytest.approx(total, rel=1e-6)


def bottlenecks(levels, shape, seed):
    """Highest-weakest-face (lowest-highest-level) path level from voxel ``seed`` to every
    voxel (Dijkstra with max instead of +), on the face levels of ``face_levels``."""
    inf = 1 << 30
    out = np.full(shape, inf, np.int64)
    out[seed] = 0
    heap = [(0, seed)]
    while heap:
        lev, p = heapq.heappop(heap)
        if lev > out[p]:
            continue
        for d in range(3):
            for step in (-1, 1):
                q = list(p)
                q[d] += step
                q = tuple(q)
                if not 0 <= q[d] < shape[d]:
                    continue
                lo = p if step > 0 else q  # the face (lo, lo + e_d)
                w = int(levels[d][tuple(i + 1 for i in lo)])
                if max(lev, w) < out[q]:
                    out[q] = max(lev, w)
                    heapq.heappush(heap, (max(lev, w), q))
    return out


def test_affinity_watershed_gives_each_voxel_a_seed_of_best_bottleneck():
    shape = (8, 14, 15)
    truth = cells(shape, 6, 6)
    affs, _ = affinities(truth, NN_MINUS, ignore_label=None)
    noise = ndi.gaussian_filter(np.random.default_rng(7).random(affs.shape), (0, 1, 1, 1))
    affs = np.clip(0.15 + 0.7 * affs + 0.6 * (noise - 0.5), 0, 1).astype(np.float32)
    faces = face_channels(NN_MINUS)
    params = FragmentParams(min_size=0, sigma_seeds=1.0)
    basins = affinity_basins(affs, faces, params)
    labels = basins.merged()
    assert basins.roots is None and (labels > 0).all() and len(basins.rep) > 2
    levels = face_levels(affs, faces).copy()
    seeds = [np.unravel_index(r, shape) for r in basins.rep[1:]]
    best = np.stack([bottlenecks(levels, shape, tuple(int(i) for i in s)) for s in seeds])
    own = np.take_along_axis(best, (labels[None].astype(np.int64) - 1), 0)[0]
    np.testing.assert_array_equal(own, best.min(0))


def test_affinity_watershed_follows_clean_affinities():
    """Affinities of a labelling (0 across its faces): no fragment crosses a cell."""
    truth = cells((10, 20, 20), 5, 8)
    affs, _ = affinities(truth, NN_MINUS, ignore_label=None)
    labels = affinity_basins(affs, face_channels(NN_MINUS), FragmentParams(min_size=0)).merged()
    for k in np.unique(labels):
        assert len(np.unique(truth[labels == k])) == 1
