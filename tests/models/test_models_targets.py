"""Boundary maps, affinities (nearest and long range), masks and affinities -> boundary, checked
by hand on a toy label volume."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import InputError
from models.volumetric.targets import (
    NN_OFFSETS_2D,
    NN_OFFSETS_3D,
    affinities,
    affinities_to_boundary,
    boundary_map,
    long_range_offsets,
    unlabeled_mask,
)

# two sections of 3x3; label 0 (unlabeled) at z=1, y=2, x=2
TOY = np.array(
    [
        [[1, 1, 2], [1, 1, 2], [3, 3, 3]],
        [[1, 1, 2], [1, 1, 2], [3, 3, 0]],
    ],
    dtype=np.uint64,
)


def test_boundary_map_by_hand():
    boundary, mask = boundary_map(TOY)
    expected = np.array(
        [
            [[0, 1, 1], [1, 1, 1], [1, 1, 1]],
            [[0, 1, 1], [1, 1, 1], [1, 1, 0]],
        ],
        dtype=np.float32,
    )
    assert np.array_equal(boundary, expected)
    assert np.array_equal(mask, (TOY != 0).astype(np.float32))
    assert np.array_equal(unlabeled_mask(TOY), mask)


def test_boundary_map_within_sections_only():
    boundary, _ = boundary_map(np.array([[[1, 1]], [[2, 2]]]), axes=(1, 2))
    assert boundary.sum() == 0  # the z contact is ignored when only y, x count
    boundary, _ = boundary_map(np.array([[[1, 1]], [[2, 2]]]))
    assert boundary.sum() == 4


def test_nearest_neighbour_affinities_by_hand():
    affs, mask = affinities(TOY, NN_OFFSETS_3D)
    assert affs.shape == mask.shape == (3, 2, 3, 3)
    # z channel: nothing before z=0; at z=1 equal labels except the unlabeled voxel
    assert np.array_equal(mask[0, 0], np.zeros((3, 3)))
    assert np.array_equal(affs[0, 1], [[1, 1, 1], [1, 1, 1], [1, 1, 0]])
    assert np.array_equal(mask[0, 1], [[1, 1, 1], [1, 1, 1], [1, 1, 0]])
    # y channel (compare with the row above)
    assert np.array_equal(affs[1, 0], [[0, 0, 0], [1, 1, 1], [0, 0, 0]])
    assert np.array_equal(mask[1, 0], [[0, 0, 0], [1, 1, 1], [1, 1, 1]])
    assert np.array_equal(mask[1, 1], [[0, 0, 0], [1, 1, 1], [1, 1, 0]])
    # x channel (compare with the column to the left)
    assert np.array_equal(affs[2, 0], [[0, 1, 0], [0, 1, 0], [0, 1, 1]])
    assert np.array_equal(mask[2, 1], [[0, 1, 1], [0, 1, 1], [0, 1, 0]])


def test_long_range_affinities_by_hand():
    affs, mask = affinities(TOY, [(0, 0, -2), (-1, -1, 0)])
    assert np.array_equal(affs[0, 0], [[0, 0, 0], [0, 0, 0], [0, 0, 1]])
    assert np.array_equal(mask[0, 0], [[0, 0, 1], [0, 0, 1], [0, 0, 1]])
    assert np.array_equal(mask[0, 1], [[0, 0, 1], [0, 0, 1], [0, 0, 0]])
    # diagonal (z-1, y-1): z=1,y=1 sees z=0,y=0 (same labels 1,1,2); z=1,y=2 sees 1,1,2 vs 3,3,0
    assert np.array_equal(affs[1, 1], [[0, 0, 0], [1, 1, 1], [0, 0, 0]])
    assert np.array_equal(mask[1, 1], [[0, 0, 0], [1, 1, 1], [1, 1, 0]])
    assert long_range_offsets(3, (1, 4)) == [
        (-1, 0, 0), (0, -1, 0), (0, 0, -1), (-4, 0, 0), (0, -4, 0), (0, 0, -4),
    ]  # fmt: skip


def test_offsets_larger_than_the_volume_are_masked():
    affs, mask = affinities(TOY, [(0, 0, -5)])
    assert mask.sum() == 0 and affs.sum() == 0
    with pytest.raises(InputError, match="axes"):
        affinities(TOY, [(0, -1)])


def test_affinities_to_boundary_by_hand():
    affs, _ = affinities(np.array([[1, 1, 2]]), NN_OFFSETS_2D)
    assert np.allclose(affinities_to_boundary(affs, NN_OFFSETS_2D), [[0.0, 0.5, 1.0]])
    assert np.allclose(affinities_to_boundary(affs, NN_OFFSETS_2D, "min"), [[0.0, 1.0, 1.0]])


def test_affinities_to_boundary_min_equals_boundary_map():
    rng = np.random.default_rng(1)
    labels = rng.integers(1, 4, size=(5, 6, 7))
    affs, _ = affinities(labels, long_range_offsets(3, (1, 3)))
    b = affinities_to_boundary(affs, long_range_offsets(3, (1, 3)), reduce="min")
    assert np.array_equal(b, boundary_map(labels)[0])
    with pytest.raises(InputError, match="nearest-neighbour"):
        affinities_to_boundary(affs[:1], [(0, 0, -3)])
