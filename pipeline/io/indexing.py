"""numpy-style indexing of a volume in voxels: ``vol[0:64, 100:200, :]``.

Per axis (a leading channel axis where the volume has channels, then z, y, x) an integer or a
slice of step 1. Negative indices count from the end, slices are clipped to the volume as numpy
clips them, and an integer drops its axis. The spatial part becomes one box of voxels, read like
``Volume.read`` reads a ROI; the channel index and the dropped axes are applied to what it returns.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.geometry import Coord, Roi

SPATIAL_AXES = ("z", "y", "x")


class VoxelIndexError(InputError, IndexError):
    """An integer index outside its axis, or more indices than the volume has axes; an
    ``IndexError`` too, as numpy raises one."""


@dataclass(frozen=True)
class VoxelSelection:
    """What an index selects: ``box``, the spatial voxels (from the volume's first voxel, z, y,
    x); ``channels``, the index of the channel axis (None where there is none); ``dropped``, the
    spatial axes an integer selected, dropped from the result."""

    box: Roi
    channels: int | slice | None
    dropped: tuple[bool, bool, bool]

    def take(self, data: np.ndarray) -> np.ndarray:
        """The selection from ``data``, the box read with all its channels."""
        lead = () if self.channels is None else (self.channels,)
        return data[(*lead, *(0 if d else slice(None) for d in self.dropped))]


def select_voxels(key: Any, shape: Sequence[int], url: str) -> VoxelSelection:
    """The voxels ``key`` selects in a volume whose array has ``shape`` (channels first where
    there are channels, then z, y, x); ``url`` names the volume in errors."""
    names = ("c", *SPATIAL_AXES) if len(shape) == 4 else SPATIAL_AXES
    indices = _per_axis(key, len(shape), url)
    bounds = [
        _axis_bounds(index, length, name, url)
        for index, length, name in zip(indices, shape, names, strict=True)
    ]
    channels = None
    if len(shape) == 4:
        (begin, end, drop), bounds = bounds[0], bounds[1:]
        channels = begin if drop else slice(begin, end)
    box = Roi.from_bounds([b for b, _, _ in bounds], [e for _, e, _ in bounds])
    dropped = tuple(d for _, _, d in bounds)
    return VoxelSelection(box, channels, dropped)


def _per_axis(key: Any, ndim: int, url: str) -> tuple[Any, ...]:
    """``key`` as one index per axis: a lone index is a tuple of one, an Ellipsis stands for
    the full slices it spans, and missing trailing indices are full slices."""
    key = key if isinstance(key, tuple) else (key,)
    ellipses = [i for i, k in enumerate(key) if k is Ellipsis]
    if len(ellipses) > 1:
        raise VoxelIndexError(f"{url}: an index can only have a single ellipsis ('...')")
    if ellipses:
        at = ellipses[0]
        fill = (slice(None),) * max(0, ndim - len(key) + 1)
        key = key[:at] + fill + key[at + 1 :]
    if len(key) > ndim:
        axes = "(c, z, y, x)" if ndim == 4 else "(z, y, x)"
        raise VoxelIndexError(
            f"{url}: too many indices: {len(key)} for a volume of {ndim} axes {axes}"
        )
    return key + (slice(None),) * (ndim - len(key))


def _axis_bounds(index: Any, length: int, name: str, url: str) -> tuple[int, int, bool]:
    """(begin, end, dropped) of one axis of ``length`` voxels."""
    if isinstance(index, slice):
        return (*_slice_bounds(index, length, name, url), False)
    if index is None or isinstance(index, bool | np.bool_):
        raise InputError(
            f"{url}: index {index!r} on axis {name}: index a volume with integers and slices; "
            "add axes or masks on the numpy array it returns"
        )
    try:
        i = operator.index(index)
    except TypeError:
        raise InputError(
            f"{url}: index {index!r} on axis {name}: index a volume with integers and slices "
            "(for lists, arrays or masks, read a box and index the numpy array it returns)"
        ) from None
    if not -length <= i < length:
        unit = "channels" if name == "c" else "voxels"
        raise VoxelIndexError(
            f"{url}: index {i} is out of bounds for axis {name} with {length} {unit}"
        )
    i = i + length if i < 0 else i
    return i, i + 1, True


def _slice_bounds(index: slice, length: int, name: str, url: str) -> tuple[int, int]:
    try:
        start, stop, step = index.indices(length)
    except (TypeError, ValueError) as e:
        raise InputError(f"{url}: slice {_spelled(index)} on axis {name}: {e}") from None
    if step != 1:
        raise InputError(
            f"{url}: slice {_spelled(index)} on axis {name}: volumes are "
            "read in boxes, so only steps of 1 are supported; read the box and subsample the "
            "numpy array it returns (e.g. vol[0:64][::2])"
        )
    return start, max(start, stop)


def _spelled(index: slice) -> str:
    """A slice as it was written: ``0:10:2``, ``::-1``, ``0.5:3``."""
    parts = ("" if v is None else str(v) for v in (index.start, index.stop, index.step))
    return ":".join(parts).rstrip(":") or ":"


def voxel_box_in_nm(box: Roi, voxel_size: Coord, offset: Coord) -> Roi:
    """A box of voxels (from a volume's first voxel) as the ROI in nm that ``read`` takes."""
    return box.to_world(voxel_size).shift(offset)
