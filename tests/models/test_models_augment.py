"""Augmentation keeps raw and labels aligned; defects touch the raw data as documented."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ConfigError
from models.volumetric.augment import AugmentConfig, Augmenter, shift_array

OFF = dict(intensity_p=0.0, missing_section_p=0.0, misalign_p=0.0)


def _pair(shape=(6, 6, 6), seed=0):
    labels = np.random.default_rng(seed).integers(1, 50, size=shape)
    return labels.astype(np.float32), labels


@pytest.mark.parametrize("seed", range(6))
def test_flips_and_transposes_move_raw_and_labels_together(seed):
    raw, labels = _pair()
    aug = Augmenter(AugmentConfig(**OFF))
    out_raw, out_labels = aug(raw, labels, np.random.default_rng(seed))
    assert np.array_equal(out_raw, out_labels)
    assert sorted(out_labels.ravel()) == sorted(labels.ravel())


def test_transposes_only_swap_allowed_axes_of_equal_size():
    raw, labels = _pair((2, 4, 4))
    aug = Augmenter(AugmentConfig(flip=False, transpose_axes=(1, 2), **OFF))
    seen = set()
    for seed in range(10):
        r, _ = aug(raw, labels, np.random.default_rng(seed))
        assert r.shape == (2, 4, 4)
        seen.add(np.array_equal(r, raw))
    assert seen == {True, False}  # some identity, some swapped y/x


def test_missing_section_blanks_exactly_one_section():
    raw, labels = np.ones((5, 4, 4), np.float32), np.ones((5, 4, 4), np.int64)
    cfg = AugmentConfig(flip=False, intensity_p=0.0, misalign_p=0.0, missing_section_p=1.0)
    r, lab = Augmenter(cfg)(raw, labels, np.random.default_rng(3))
    blank = [z for z in range(5) if np.all(r[z] == 0)]
    assert len(blank) == 1 and np.all(np.delete(r, blank, axis=0) == 1)
    assert np.array_equal(lab, labels)


def test_misalignment_slips_raw_only_or_shifts_both():
    cfg = AugmentConfig(flip=False, transpose_axes=(), intensity_p=0.0, missing_section_p=0.0,
                        misalign_p=1.0, max_misalign=2)  # fmt: skip
    kinds = set()
    for seed in range(12):
        raw, labels = _pair((4, 8, 8), seed)
        r, lab = Augmenter(cfg)(raw, labels, np.random.default_rng(seed))
        if np.array_equal(lab, labels):  # one section slipped: raw differs in one section
            changed = [z for z in range(4) if not np.array_equal(r[z], raw[z])]
            assert len(changed) <= 1
            kinds.add("slip")
        else:  # sections shifted together: raw still equals labels where labeled
            labeled = lab != 0
            assert np.array_equal(r[labeled], lab[labeled].astype(np.float32))
            kinds.add("shift")
    assert kinds == {"slip", "shift"}


def test_intensity_changes_raw_only():
    raw, labels = _pair()
    cfg = AugmentConfig(flip=False, transpose_axes=(), intensity_p=1.0, missing_section_p=0.0,
                        misalign_p=0.0)  # fmt: skip
    r, lab = Augmenter(cfg)(raw, labels, np.random.default_rng(0))
    assert not np.allclose(r, raw)
    assert np.array_equal(lab, labels)


def test_shift_array_fills_the_vacated_strip():
    a = np.arange(9).reshape(3, 3)
    assert np.array_equal(shift_array(a, 1, -1, -1), [[-1, -1, -1], [1, 2, -1], [4, 5, -1]])


def test_unknown_option_is_refused():
    with pytest.raises(ConfigError, match="flipz"):
        AugmentConfig.from_dict({"flipz": True})
