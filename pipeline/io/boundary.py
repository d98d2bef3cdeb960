"""Boundary maps as the segmentation stages read them: float32 in [0, 1], 1 = membrane, from
uint8/uint16/float storage or from affinities (1 = same object)."""

from __future__ import annotations

import numpy as np

from pipeline.errors import InputError
from pipeline.geometry import Roi
from pipeline.io.base import Volume
from pipeline.seg.valuerange import value_range

FLOAT_TOLERANCE = 1e-3


def to_boundary(data: np.ndarray, url: str, channels: int | None) -> np.ndarray:
    """Scale a block of a boundary map (or affinities) to float32 in [0, 1] (1 = membrane).

    uint8 is divided by 255 and uint16 by 65535; floats must already lie in [0, 1].
    Affinities (3+ channels, 1 = same object) become ``1 - mean of the z, y, x affinities``."""
    if data.dtype == np.uint8:
        out = data.astype(np.float32) / 255.0
    elif data.dtype == np.uint16:
        out = data.astype(np.float32) / 65535.0
    elif data.dtype == np.bool_:
        out = data.astype(np.float32)
    else:
        out = np.asarray(data, dtype=np.float32)
        if out.size:
            lo, hi, nan = value_range(out)
            if nan or lo < -FLOAT_TOLERANCE or hi > 1 + FLOAT_TOLERANCE:
                raise InputError(
                    f"boundary map {url}: values must lie in [0, 1] (1 = membrane), found "
                    f"[{lo:g}, {hi:g}]{' and NaN' if nan else ''}; rescale it "
                    "(e.g. a sigmoid of logits) or store it as uint8 0-255"
                )
            if lo < 0.0 or hi > 1.0:  # within the tolerance: clip (a copy only when needed)
                out = np.clip(out, 0.0, 1.0)
    if channels is not None:
        out = out[0] if channels == 1 else 1.0 - out[:3].mean(axis=0)
    return np.ascontiguousarray(out, dtype=np.float32)


def read_boundary(vol: Volume, roi: Roi) -> np.ndarray:
    return to_boundary(vol.read(roi), vol.url, vol.channels)
