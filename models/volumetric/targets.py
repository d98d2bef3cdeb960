"""Training targets from dense neuron labels (numpy, any number of spatial axes).

Conventions:
- ``ignore_label`` (0 by default) marks unlabeled voxels; they are masked out of every target
  and a difference to an unlabeled neighbour is not evidence of a boundary.
- Affinity channel ``c`` at voxel ``p`` is 1 where ``labels[p] == labels[p + offsets[c]]``
  (both labeled), 0 where they differ, and masked where ``p + offset`` is outside the volume or
  either voxel is unlabeled. Offsets like (-1, 0, 0) look back along z (elf/affogato convention).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.errors import InputError

NN_OFFSETS_3D = ((-1, 0, 0), (0, -1, 0), (0, 0, -1))
NN_OFFSETS_2D = ((-1, 0), (0, -1))


def long_range_offsets(ndim: int = 3, distances: Sequence[int] = (1, 3, 9)) -> list[tuple]:
    """Nearest-neighbour plus longer-range offsets along each axis, e.g. -1, -3, -9."""
    return [
        tuple(-d if a == axis else 0 for a in range(ndim))
        for d in distances
        for axis in range(ndim)
    ]


def unlabeled_mask(labels: np.ndarray, ignore_label: int | None = 0) -> np.ndarray:
    """1.0 where a voxel is labeled, 0.0 where it equals ``ignore_label``."""
    if ignore_label is None:
        return np.ones(labels.shape, np.float32)
    return (labels != ignore_label).astype(np.float32)


def _pair_slices(shape: Sequence[int], offset: Sequence[int]) -> tuple[tuple, tuple]:
    """Slices ``a``, ``b`` with ``a`` selecting voxels p and ``b`` selecting p + offset."""
    a, b = [], []
    for size, o in zip(shape, offset, strict=True):
        if abs(o) >= size:
            return (slice(0, 0),) * len(shape), (slice(0, 0),) * len(shape)
        a.append(slice(max(0, -o), size - max(0, o)))
        b.append(slice(max(0, o), size - max(0, -o)))
    return tuple(a), tuple(b)


def affinities(
    labels: np.ndarray, offsets: Sequence[Sequence[int]], ignore_label: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Affinities and their mask, both float32 of shape (len(offsets), *labels.shape)."""
    offsets = [tuple(int(v) for v in o) for o in offsets]
    for o in offsets:
        if len(o) != labels.ndim:
            raise InputError(f"offset {o} has {len(o)} axes but the labels have {labels.ndim}")
    affs = np.zeros((len(offsets),) + labels.shape, np.float32)
    mask = np.zeros_like(affs)
    labeled = labels != ignore_label if ignore_label is not None else np.ones(labels.shape, bool)
    for c, o in enumerate(offsets):
        a, b = _pair_slices(labels.shape, o)
        affs[c][a] = labels[a] == labels[b]
        mask[c][a] = labeled[a] & labeled[b]
    affs *= mask
    return affs, mask


def boundary_map(
    labels: np.ndarray, axes: Sequence[int] | None = None, ignore_label: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Boundary target and mask (float32, labels' shape).

    A voxel is boundary (1) when a face neighbour along one of ``axes`` (default: all) carries a
    different label; both sides of a contact are marked, so boundaries are two voxels thick.
    Unlabeled voxels are masked (mask 0).
    """
    axes = tuple(range(labels.ndim)) if axes is None else tuple(axes)
    labeled = labels != ignore_label if ignore_label is not None else np.ones(labels.shape, bool)
    boundary = np.zeros(labels.shape, bool)
    for axis in axes:
        o = tuple(-1 if a == axis else 0 for a in range(labels.ndim))
        a, b = _pair_slices(labels.shape, o)
        differs = (labels[a] != labels[b]) & labeled[a] & labeled[b]
        boundary[a] |= differs
        boundary[b] |= differs
    return boundary.astype(np.float32), labeled.astype(np.float32)


def affinities_to_boundary(
    affs: np.ndarray, offsets: Sequence[Sequence[int]], reduce: str = "mean"
) -> np.ndarray:
    """A boundary map from nearest-neighbour affinities: 1 - (mean or min) affinity of the edges
    touching each voxel (its own edges and those of the neighbours pointing at it). Longer-range
    channels are ignored. For stages (such as a watershed) that want one channel."""
    if reduce not in ("mean", "min"):
        raise InputError(f"reduce={reduce!r}; use 'mean' or 'min'")
    spatial = affs.shape[1:]
    nn_channels = [c for c, o in enumerate(offsets) if sum(abs(v) for v in o) == 1]
    if not nn_channels:
        raise InputError(f"offsets {list(offsets)} contain no nearest-neighbour offset")
    if affs.shape[0] != len(offsets):
        raise InputError(f"affinities have {affs.shape[0]} channels but {len(offsets)} offsets")
    total = np.zeros(spatial, np.float32)
    count = np.zeros(spatial, np.float32)
    low = np.ones(spatial, np.float32)
    for c in nn_channels:
        a, b = _pair_slices(spatial, offsets[c])
        edge = affs[c][a]
        for sl in (a, b):  # the edge p <-> p + o touches both voxels
            total[sl] += edge
            count[sl] += 1
            np.minimum(low[sl], edge, out=low[sl])
    if reduce == "min":
        return (1.0 - low).astype(np.float32)
    return (1.0 - total / np.maximum(count, 1)).astype(np.float32)
