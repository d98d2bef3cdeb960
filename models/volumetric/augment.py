"""EM augmentation on numpy crops: raw (normalised float) and labels augmented together.

Geometric ones (flips, transposes, a shifted block of sections) move raw and labels alike, so the
targets computed from the augmented labels stay correct. Intensity changes and defects of the
raw data only (a missing section, one misaligned "slipped" section) teach robustness to what the
microscope does wrong; the labels keep the truth. Axis 0 is the section axis (z).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.records import refuse_unknown


@dataclass
class AugmentConfig:
    flip: bool = True
    transpose_axes: Sequence[int] | None = None  # axes that may swap; None = all (isotropic)
    intensity_p: float = 0.8
    scale: tuple[float, float] = (0.8, 1.2)  # contrast
    shift: tuple[float, float] = (-0.2, 0.2)  # brightness, in units of the normalised raw
    gamma: tuple[float, float] = (0.8, 1.25)
    noise_std: float = 0.05
    missing_section_p: float = 0.05
    misalign_p: float = 0.1
    max_misalign: int = 8  # voxels

    @classmethod
    def from_dict(cls, d: dict | None) -> AugmentConfig:
        d = dict(d or {})
        refuse_unknown(d, cls, "augment")
        return cls(**d)


def shift_array(a: np.ndarray, dy: int, dx: int, fill) -> np.ndarray:
    """``a`` shifted by (dy, dx) over its last two axes, vacated voxels set to ``fill``."""
    out = np.full_like(a, fill)
    h, w = a.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src = (..., slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
    dst = (..., slice(max(0, dy), h - max(0, -dy)), slice(max(0, dx), w - max(0, -dx)))
    out[dst] = a[src]
    return out


class Augmenter:
    """``raw, labels = Augmenter(config)(raw, labels, rng)``."""

    def __init__(self, config: AugmentConfig | None = None) -> None:
        self.config = config or AugmentConfig()

    def __call__(
        self, raw: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        raw, labels = self.geometric(raw, labels, rng)
        raw = raw.astype(np.float32, copy=True)
        if rng.random() < c.intensity_p:
            raw = self.intensity(raw, rng)
        if raw.ndim == 3 and raw.shape[0] > 2:
            if rng.random() < c.misalign_p:
                raw, labels = self.misalign(raw, labels, rng)
            if rng.random() < c.missing_section_p:
                raw[rng.integers(raw.shape[0])] = 0.0
        return np.ascontiguousarray(raw), np.ascontiguousarray(labels)

    def geometric(self, raw, labels, rng):
        c = self.config
        if c.flip:
            for axis in range(raw.ndim):
                if rng.random() < 0.5:
                    raw, labels = np.flip(raw, axis), np.flip(labels, axis)
        axes = list(range(raw.ndim)) if c.transpose_axes is None else list(c.transpose_axes)
        axes = [a for a in axes if raw.shape[a] == raw.shape[axes[0]]] if axes else []
        if len(axes) > 1:
            perm = list(range(raw.ndim))
            for a, b in zip(axes, rng.permutation(axes), strict=True):
                perm[a] = int(b)
            raw, labels = raw.transpose(perm), labels.transpose(perm)
        return raw, labels

    def intensity(self, raw: np.ndarray, rng) -> np.ndarray:
        c = self.config
        raw = raw * rng.uniform(*c.scale) + rng.uniform(*c.shift)
        gamma = rng.uniform(*c.gamma)
        if gamma != 1.0:  # gamma on the [0, 1]-rescaled crop, then back
            lo, hi = float(raw.min()), float(raw.max())
            if hi > lo:
                raw = ((raw - lo) / (hi - lo)) ** gamma * (hi - lo) + lo
        if c.noise_std > 0:
            raw = raw + rng.normal(0.0, c.noise_std, raw.shape).astype(np.float32)
        return raw.astype(np.float32)

    def misalign(self, raw, labels, rng):
        """Either one section slips (raw only) or every section from z0 on is shifted (raw and
        labels; the vacated strip becomes unlabeled, so it is masked from the loss)."""
        m = self.config.max_misalign
        dy, dx = (int(v) for v in rng.integers(-m, m + 1, size=2))
        z0 = int(rng.integers(1, raw.shape[0]))
        if rng.random() < 0.5:
            raw[z0] = shift_array(raw[z0], dy, dx, 0.0)
        else:
            raw[z0:] = shift_array(raw[z0:], dy, dx, 0.0)
            labels = labels.copy()
            labels[z0:] = shift_array(labels[z0:], dy, dx, 0)
        return raw, labels
