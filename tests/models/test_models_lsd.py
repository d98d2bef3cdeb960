"""Local shape descriptors on shapes whose descriptors are known in closed form: the inside of a
large ball (a full window), a thin tube (a line: all variance along its axis), a diagonal tube
(fully correlated axes), and anisotropic voxels (world units)."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import InputError
from models.volumetric.lsd import TRUNCATE, local_shape_descriptors, lsd_channels


def _ball(shape: int, radius: float) -> np.ndarray:
    zz, yy, xx = np.indices((shape,) * 3) - shape // 2
    return (zz**2 + yy**2 + xx**2 <= radius**2).astype(np.uint32)


def _window_variance(sigma: float) -> float:
    """Variance of a discrete Gaussian window truncated at TRUNCATE * sigma (1 voxel spacing)."""
    r = int(TRUNCATE * sigma + 0.5)
    x = np.arange(-r, r + 1)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return float((w * x * x).sum() / w.sum())


def test_channel_counts():
    assert lsd_channels(3) == 10
    assert lsd_channels(2) == 6


def test_inside_a_large_ball_the_window_is_full_and_centred():
    sigma = 2.0
    lsd = local_shape_descriptors(_ball(41, 15), sigma)
    c = lsd[:, 20, 20, 20]
    np.testing.assert_allclose(c[0:3], 0.5, atol=1e-6)  # centred
    np.testing.assert_allclose(c[3:6], _window_variance(sigma) / sigma**2, atol=1e-4)
    np.testing.assert_allclose(c[6:9], 0.5, atol=1e-6)  # uncorrelated
    np.testing.assert_allclose(c[9], 1.0, atol=1e-6)  # all of the window is this neuron


def test_at_the_surface_of_a_ball_the_offset_points_inwards():
    lsd = local_shape_descriptors(_ball(41, 15), 2.0)
    top = lsd[:, 20 - 15, 20, 20]  # the voxel on the ball's surface at low z
    assert top[0] > 0.6  # the mass lies towards +z
    np.testing.assert_allclose(top[1:3], 0.5, atol=1e-6)
    assert 0.3 < top[9] < 0.7  # about half the window is inside
    assert (lsd[:, 0, 0, 0] == 0).all()  # background (label 0) is left at 0


def test_a_thin_tube_has_all_its_variance_along_its_axis():
    labels = np.zeros((21, 21, 61), np.uint32)
    labels[10, 10, :] = 7  # one-voxel line along x
    sigma = 3.0
    lsd = local_shape_descriptors(labels, sigma)
    c = lsd[:, 10, 10, 30]
    np.testing.assert_allclose(c[0:3], 0.5, atol=1e-6)
    np.testing.assert_allclose(c[3:5], 0.0, atol=1e-6)  # a line has no extent across z, y
    np.testing.assert_allclose(c[5], _window_variance(sigma) / sigma**2, atol=1e-4)
    np.testing.assert_allclose(c[6:9], 0.5, atol=1e-6)
    # the line holds the centre row of the window: its share of a 3D Gaussian's mass
    r = int(TRUNCATE * sigma + 0.5)
    w = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    np.testing.assert_allclose(c[9], (w[r] / w.sum()) ** 2, rtol=1e-4)


def test_a_diagonal_tube_has_correlated_axes():
    labels = np.zeros((9, 40, 40), np.uint32)
    for i in range(40):  # the two diagonals never share a voxel (40 is even)
        labels[4, i, i] = 1  # along +y +x
        labels[4, i, 39 - i] = 2  # along +y -x
    lsd = local_shape_descriptors(labels, 3.0)
    assert lsd[8, 4, 10, 10] == pytest.approx(1.0, abs=1e-4)  # (y, x) pearson +1
    assert lsd[8, 4, 10, 29] == pytest.approx(0.0, abs=1e-4)  # (y, x) pearson -1


def test_world_units_make_anisotropic_voxels_isotropic():
    iso = np.zeros((31, 31, 31), np.uint32)
    iso[15, 15, :] = 1
    aniso = np.zeros((31, 31, 31), np.uint32)
    aniso[15, 15, :] = 1
    a = local_shape_descriptors(iso, 6.0, voxel_size=(2, 2, 2))
    b = local_shape_descriptors(aniso, 3.0)
    np.testing.assert_allclose(a[:, 15, 15, 15], b[:, 15, 15, 15], atol=1e-5)


def test_bad_parameters_are_refused():
    with pytest.raises(InputError, match="sigma"):
        local_shape_descriptors(np.ones((4, 4, 4), np.uint32), 0.0)
    with pytest.raises(InputError, match="voxel_size"):
        local_shape_descriptors(np.ones((4, 4, 4), np.uint32), 1.0, voxel_size=(1, 1))


def test_downsampled_descriptors_approach_the_exact_ones_as_sigma_grows():
    zz, yy, xx = np.indices((48, 48, 48))
    labels = (1 + (xx > 20 + zz // 4) + 2 * (yy > 25)).astype(np.uint32)  # four slanted cells
    labels[(zz - 24) ** 2 + (yy - 24) ** 2 + (xx - 24) ** 2 <= 81] = 9  # and a ball
    errors = []
    for sigma in (4.0, 8.0):
        exact = local_shape_descriptors(labels, sigma)
        coarse = local_shape_descriptors(labels, sigma, downsample=2)
        assert coarse.shape == exact.shape
        errors.append(np.abs(coarse - exact).mean(axis=(1, 2, 3)).max())
    assert errors[1] < 0.025 and errors[1] < 0.6 * errors[0], errors
    with pytest.raises(InputError):
        local_shape_descriptors(labels, 4.0, downsample=0)


def _reference_descriptors(labels: np.ndarray, sigma: float, factor: int) -> np.ndarray:
    """Reference without the shortcuts: at full resolution each neuron's descriptors over the
    whole volume; downsampled, over its grown box (the coarse grid starts at the box's corner)
    upsampled whole by repetition; then taken at its voxels."""
    from scipy import ndimage

    from models.volumetric.lsd import _descriptors

    out = np.zeros((lsd_channels(3),) + labels.shape, np.float32)
    sv, sp, reach = np.full(3, sigma), np.ones(3), int(np.ceil(TRUNCATE * sigma))
    for value, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        if factor == 1:
            mask = labels == value
            out[:, mask] = _descriptors(mask, sv, sp, sigma)[:, mask]
            continue
        grown = tuple(slice(max(0, b.start - reach), min(48, b.stop + reach)) for b in box)
        mask = labels[grown] == value
        n = mask.shape
        m = np.pad(mask.astype(np.float32), [(0, k % 2) for k in n])
        m = m.reshape(m.shape[0] // 2, 2, m.shape[1] // 2, 2, m.shape[2] // 2, 2)
        d = _descriptors(m.mean(axis=(1, 3, 5)), sv / 2, sp * 2, sigma, soft=True)
        d = d.repeat(2, axis=1).repeat(2, axis=2).repeat(2, axis=3)[:, : n[0], : n[1], : n[2]]
        for axis in range(3):
            j = np.arange(n[axis])
            shift = (j - (j // 2 * 2 + 0.5)) / sigma * 0.5
            view = [1, 1, 1]
            view[axis] = n[axis]
            d[axis] = np.clip(d[axis] - shift.reshape(view), 0.0, 1.0)
        out[(slice(None),) + grown][:, mask] = d[:, mask]
    return out


@pytest.mark.parametrize("factor", [1, 2])
def test_bounding_boxes_and_gathering_change_nothing(factor):
    """Each neuron filtered in its grown box, axis by axis cropped to its own box, and (when
    downsampled) only its voxels gathered: the very values of the whole-volume computation."""
    rng = np.random.default_rng(3)
    labels = np.ones((48, 48, 48), np.uint32)
    for value in range(2, 10):  # boxes of random size and place, some cut by the volume's edge
        lo = rng.integers(-8, 40, 3)
        hi = lo + rng.integers(6, 30, 3)
        labels[tuple(slice(max(0, a), max(0, b)) for a, b in zip(lo, hi, strict=True))] = value
    expect = _reference_descriptors(labels, 3.0, factor)
    got = local_shape_descriptors(labels, 3.0, ignore_label=None, downsample=factor)
    np.testing.assert_array_equal(got, expect)
