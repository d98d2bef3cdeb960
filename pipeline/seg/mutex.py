"""Mutex watershed (Wolf et al., TPAMI 2020) of an affinity block through the maintained ``mwatershed``
implementation: a greedy clustering over attractive (nearest-neighbour) and repulsive (long-range)
edges that needs no seeds and no threshold sweep.

Affinities follow the model library's convention: channel ``c`` at voxel ``p`` is the
probability that ``p`` and ``p + offsets[c]`` belong to the same neuron. An edge is attractive by
its affinity above ``bias_short`` (offsets of length 1) or ``bias_long`` (longer offsets), and
repulsive below it; a higher ``bias_long`` splits more. ``long_range_stride`` samples the long
edges on a coarser grid (they are split-biased, and fewer of them are faster).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class MutexParams:
    """Parameters of :func:`mutex_segments` (hashed into done markers)."""

    bias_short: float = 0.5
    bias_long: float = 0.5
    long_range_stride: int = 1  # sample long-range edges every k voxels per axis (1 = all)

    def as_dict(self) -> dict:
        return asdict(self)


def edge_weights(
    affinities: np.ndarray, offsets: Sequence[Sequence[int]], params: MutexParams
) -> np.ndarray:
    """Signed edge weights (float64): positive attracts, negative repels, magnitude = priority."""
    weights = np.empty(affinities.shape, np.float64)
    for c, offset in enumerate(offsets):
        bias = params.bias_short if sum(abs(int(v)) for v in offset) == 1 else params.bias_long
        np.subtract(affinities[c], bias, out=weights[c], dtype=np.float64)
    return weights


def mutex_segments(
    affinities: np.ndarray, offsets: Sequence[Sequence[int]], params: MutexParams | None = None
) -> np.ndarray:
    """Segments (uint64, >= 1, every voxel labeled) of a (C, *spatial) affinity array in
    [0, 1] with one offset per channel."""
    import mwatershed  # compiled (Rust); imported where used so other stages never load it

    params = params or MutexParams()
    offsets = [[int(v) for v in o] for o in offsets]
    if affinities.ndim != len(offsets[0]) + 1 or affinities.shape[0] != len(offsets):
        raise ValueError(
            f"affinities of shape {affinities.shape} do not match {len(offsets)} offsets"
        )
    strides = None
    if params.long_range_stride > 1:
        k = params.long_range_stride
        strides = [[1] * len(o) if sum(abs(v) for v in o) == 1 else [k] * len(o) for o in offsets]
    labels = mwatershed.agglom(edge_weights(affinities, offsets, params), offsets, strides=strides)
    return np.asarray(labels, np.uint64)
