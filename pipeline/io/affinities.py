"""Affinity volumes as the segmentation stages read them: float32 in [0, 1] (1 = same object),
one channel per offset; channel c at voxel p is the affinity between p and p + offsets[c]
(``models.volumetric.targets.affinities``). The predict stage stores the offsets in the
volume's attribute ``offsets``."""

from __future__ import annotations

import numpy as np

from pipeline.errors import InputError
from pipeline.geometry import Roi
from pipeline.io.base import Volume

DEFAULT_NN_OFFSETS = ([-1, 0, 0], [0, -1, 0], [0, 0, -1])  # the model library's convention


def has_affinities(vol: Volume) -> bool:
    """Whether ``vol`` holds affinities: 3 or more channels, nearest-neighbour z, y, x first."""
    return vol.channels is not None and vol.channels >= 3


def affinity_offsets(vol: Volume) -> list[list[int]]:
    """The offsets stored with an affinity volume (the predict stage writes them), checked."""
    offsets = vol.attrs.get("offsets")
    if vol.channels is None or not offsets:
        raise InputError(
            f"{vol.url} holds no affinities with offsets (attribute 'offsets', one per channel): "
            "this needs an affinity model's prediction (petaseg predict)"
        )
    if len(offsets) != vol.channels or any(len(o) != 3 for o in offsets):
        raise InputError(
            f"{vol.url} has {vol.channels} channels but offsets {offsets}: one (z, y, x) offset "
            "per channel is needed"
        )
    return [[int(v) for v in o] for o in offsets]


def nn_offsets(vol: Volume) -> list[list[int]]:
    """The offsets of an affinity volume: stored ones, else the model library's convention
    (first three channels z, y, x with offsets -e_z, -e_y, -e_x)."""
    if vol.attrs.get("offsets"):
        return affinity_offsets(vol)
    if not has_affinities(vol):
        raise InputError(
            f"{vol.url} has {vol.channels or 1} channel(s): affinities need 3 or more "
            "(nearest-neighbour z, y, x first)"
        )
    return [list(o) for o in DEFAULT_NN_OFFSETS] + [[0, 0, 0]] * (vol.channels - 3)


def read_affinities(vol: Volume, roi: Roi) -> np.ndarray:
    """Affinities of ``roi`` as float32 in [0, 1] (uint8 storage is scaled by 1/255, uint16 by
    1/65535)."""
    data = vol.read(roi)
    if data.dtype == np.uint8:
        return data.astype(np.float32) / np.float32(255.0)
    if data.dtype == np.uint16:
        return data.astype(np.float32) / np.float32(65535.0)
    return np.clip(np.asarray(data, np.float32), 0.0, 1.0)
