"""The compiled watershed (bucket-queue priority flood) against skimage's heap watershed: the
same labels on the same quantised heights (random, tied and real inputs, 3D and 2D), and a
measured difference (VI) against skimage on the unquantised float heights of real data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from pipeline.evaluate import evaluate_arrays
from pipeline.seg.distance import distance_transform
from pipeline.seg.filters import gaussian, seeds_from_distance
from pipeline.seg.flood import LEVELS, flood, flood_state, interior, padded, set_border
from pipeline.seg.watershed import FragmentParams, watershed_fragments
from tests.conftest import shared_file


def compiled(levels: np.ndarray, markers: np.ndarray) -> np.ndarray:
    """Our flood on integer levels (< LEVELS) and markers (0 = none), any 2D/3D shape."""
    labels = np.zeros(padded(levels.shape), np.int32)
    interior(labels, levels.ndim)[...] = markers
    set_border(labels, -1)
    # the state's level is alpha * b with alpha = 1: feed levels / (LEVELS - 1) as b
    b = levels.astype(np.float64) / (LEVELS - 1)
    state = flood_state(labels, b.astype(np.float32), np.zeros(levels.shape, np.float32), 1.0, 0)
    np.testing.assert_array_equal(interior(state, levels.ndim) & 0xFFFFFFFF, levels)
    seeds = np.flatnonzero(labels > 0)
    flood(state, seeds, labels)
    return interior(labels, levels.ndim).copy()


def random_case(shape, n_seeds, rng, max_level=LEVELS - 1):
    levels = rng.integers(0, max_level + 1, shape)
    markers = np.zeros(shape, np.int32)
    flat = rng.choice(levels.size, n_seeds, replace=False)
    markers.flat[flat] = np.arange(1, n_seeds + 1)
    # seeds at distinct levels: skimage's heap leaves the order of tied seeds open
    levels.flat[flat] = rng.choice(max_level + 1, n_seeds, replace=False)
    return levels, markers


@pytest.mark.parametrize("seed", range(4))
def test_random_heights_equal_skimage(seed):
    rng = np.random.default_rng(seed)
    levels, markers = random_case((9, 13, 11), 12, rng)
    np.testing.assert_array_equal(compiled(levels, markers), watershed(levels, markers))


@pytest.mark.parametrize("seed", range(4))
def test_many_ties_equal_skimage(seed):
    """Few levels: most pops are ties, decided first in, first out as in skimage (age)."""
    rng = np.random.default_rng(10 + seed)
    levels, markers = random_case((12, 10, 14), 20, rng, max_level=40)
    np.testing.assert_array_equal(compiled(levels, markers), watershed(levels, markers))


def test_2d_uses_4_connectivity_like_skimage():
    rng = np.random.default_rng(7)
    levels, markers = random_case((40, 50), 15, rng, max_level=200)
    np.testing.assert_array_equal(compiled(levels, markers), watershed(levels, markers))


def test_unreachable_voxels_stay_zero_and_border_never_leaks():
    levels = np.zeros((3, 4, 5), np.int64)
    markers = np.zeros((3, 4, 5), np.int32)
    markers[1, 2, 3] = 7
    out = compiled(levels, markers)
    assert (out == 7).all()
    assert not compiled(levels, np.zeros_like(markers)).any()


def gala_heights():
    """Seeds and the float flooding height of a gala crop, as the fragments stage makes them."""
    import h5py

    path = shared_file("gala_fib_example/gala_fib_train.h5")
    with h5py.File(path, "r") as f:
        b = f["volumes/predictions/boundary"][:, :64, :96].astype(np.float32)
    p = FragmentParams()
    dist = gaussian(distance_transform(b < p.threshold, (1.0, 1.0, 1.0)), [p.sigma_seeds] * 3)
    labels = np.zeros(padded(b.shape), np.int32)
    seeds_from_distance(dist, labels)
    smooth = gaussian(b, [p.sigma_weights] * 3)
    height = p.alpha * smooth.astype(np.float64) + (1 - p.alpha) * (1 - dist / dist.max())
    return b, interior(labels, 3).copy(), height


@pytest.mark.realdata
def test_real_data_equal_skimage_on_quantised_heights():
    _, markers, height = gala_heights()
    levels = np.floor(np.clip(height, 0, 1) * (LEVELS - 1) + 0.5).astype(np.int64)
    np.testing.assert_array_equal(compiled(levels, markers), watershed(levels, markers))


@pytest.mark.realdata
def test_real_data_close_to_skimage_on_float_heights():
    """Quantising to 20 bits turns near-equal heights into first-in-first-out ties: measured
    VI ~1e-4 against skimage on the float64 heights (16 bits gave 0.01-0.06)."""
    _, markers, height = gala_heights()
    levels = np.floor(np.clip(height, 0, 1) * (LEVELS - 1) + 0.5).astype(np.int64)
    ours = compiled(levels, markers)
    ref = watershed(height, markers)
    assert (ours == ref).mean() > 0.999
    assert evaluate_arrays(ours, ref, ignore_gt_zero=False)["vi_sum"] < 0.01


@pytest.mark.realdata
def test_fragments_match_the_scipy_skimage_pipeline():
    """The whole fragment computation against a float64 scipy/skimage re-implementation of it
    (distance transform, smoothing, maxima seeds, heap watershed, small-fragment merging)."""
    import cc3d
    import edt

    b, _, _ = gala_heights()
    p = FragmentParams()
    dist = ndi.gaussian_filter(edt.edt(b < p.threshold), p.sigma_seeds, mode="nearest")
    peaks = (ndi.maximum_filter(dist, size=3, mode="nearest") == dist) & (dist > 0)
    seeds = cc3d.connected_components(peaks, connectivity=26)
    smooth = ndi.gaussian_filter(b, p.sigma_weights, mode="nearest")
    height = p.alpha * smooth.astype(np.float64) + (1 - p.alpha) * (1 - dist / dist.max())
    ref = watershed(height, seeds)
    ours, rep = watershed_fragments(b, FragmentParams(min_size=1))
    assert len(rep) - 1 == seeds.max()
    assert evaluate_arrays(ours, ref, ignore_gt_zero=False)["vi_sum"] < 0.01


def test_queue_stays_inside_its_pool():
    """The flood compiled with bounds checks, on heights spread over all levels (many partly
    filled chunks at once), with the pool exactly as large as ``pool_chunks`` says."""
    import numba

    from pipeline.seg import flood as fl

    checked = numba.njit(boundscheck=True)(fl._flood.py_func)
    rng = np.random.default_rng(3)
    levels, markers = random_case((20, 24, 28), 30, rng)
    labels = np.zeros(padded(levels.shape), np.int32)
    interior(labels, 3)[...] = markers
    set_border(labels, -1)
    state = (labels.astype(np.int64) << 32) | np.pad(levels, 1)
    chunks = fl.pool_chunks(state.size)
    pool, cnext = np.empty(chunks * fl.CHUNK, np.int64), np.empty(chunks, np.int32)
    seeds = np.flatnonzero(labels > 0)
    checked(state.reshape(-1), seeds, state.strides[0] // 8, state.strides[1] // 8, pool, cnext)
    np.testing.assert_array_equal(interior(state >> 32, 3), watershed(levels, markers))
