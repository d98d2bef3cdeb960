"""The global patch grid: where every network patch sits in the whole input volume.

Blockwise prediction is seam-free because patch positions never depend on the block: they are
fixed once over the whole volume, the way MONAI's ``sliding_window_inference`` places them
(stride ``int(patch * (1 - overlap))``, the last patch shifted back to end at the border, one
centred patch when the volume is thinner than the patch). A block then computes exactly the
global patches that overlap its write ROI, so each of its voxels receives the same weighted sum
as in a single whole-volume pass. All coordinates here are voxels relative to the volume origin.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import product

from pipeline.geometry import Coord, Roi


@dataclass(frozen=True)
class AxisGrid:
    """Patch starts along one axis of length ``size``: ``count`` starts, ``stride`` apart,
    except the last, which ends at ``size``. A patch longer than the axis gets one start at
    ``-(patch - size) // 2`` (the input is padded on both sides, as MONAI does)."""

    size: int
    patch: int
    stride: int
    count: int

    @classmethod
    def build(cls, size: int, patch: int, overlap: float) -> AxisGrid:
        if patch >= size:
            return cls(size, patch, patch, 1)
        stride = max(1, int(patch * (1 - overlap)))
        count = next(d for d in range(math.ceil(size / stride)) if d * stride + patch >= size) + 1
        return cls(size, patch, stride, count)

    def start(self, k: int) -> int:
        if self.patch >= self.size:
            return -((self.patch - self.size) // 2)
        return min(k * self.stride, self.size - self.patch)

    def overlapping(self, begin: int, end: int) -> range:
        """Indices of the patches that overlap ``[begin, end)`` (sorted, contiguous)."""
        if self.count == 1:
            return range(0, 1 if begin < end else 0)
        last = self.count - 1
        lo = max(0, (begin - self.patch) // self.stride + 1)  # k * stride + patch > begin
        hi = min(last, -(-end // self.stride))  # regular starts k * stride < end
        if self.start(last) < end:  # the shifted last patch always ends at size > begin
            hi = last + 1
        return range(lo, max(lo, hi))

    def span(self, begin: int, end: int) -> tuple[int, int]:
        """The extent ``[lo, hi)`` covered by the patches overlapping ``[begin, end)``."""
        ks = self.overlapping(begin, end)
        return self.start(ks[0]), self.start(ks[-1]) + self.patch


@dataclass(frozen=True)
class PatchGrid:
    """The product of one :class:`AxisGrid` per axis over a volume of ``shape`` voxels."""

    axes: tuple[AxisGrid, ...]

    @classmethod
    def build(cls, shape: Sequence[int], patch: Sequence[int], overlap: float) -> PatchGrid:
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        return cls(tuple(AxisGrid.build(s, p, overlap) for s, p in zip(shape, patch, strict=True)))

    @property
    def patch(self) -> Coord:
        return tuple(a.patch for a in self.axes)

    @property
    def num_patches(self) -> int:
        return math.prod(a.count for a in self.axes)

    def overlapping(self, roi: Roi) -> Iterator[Coord]:
        """Start corners of the patches overlapping ``roi`` (C order; nothing stored)."""
        ranges = [
            a.overlapping(b, e) for a, b, e in zip(self.axes, roi.begin, roi.end, strict=True)
        ]
        for ks in product(*ranges):
            yield tuple(a.start(k) for a, k in zip(self.axes, ks, strict=True))

    def count_overlapping(self, roi: Roi) -> int:
        return math.prod(
            len(a.overlapping(b, e)) for a, b, e in zip(self.axes, roi.begin, roi.end, strict=True)
        )

    def span(self, roi: Roi) -> Roi:
        """The box covered by the patches overlapping ``roi`` (may reach outside the volume
        only on axes thinner than the patch)."""
        bounds = [a.span(b, e) for a, b, e in zip(self.axes, roi.begin, roi.end, strict=True)]
        return Roi.from_bounds([lo for lo, _ in bounds], [hi for _, hi in bounds])

    def context(self, block_shape: Sequence[int]) -> Coord:
        """The largest margin (per axis, same on both sides) by which the patches of any block
        of a grid of ``block_shape`` reach past its write ROI, clipped to the volume. Computed
        per axis over the blocks along it (linear in the axis length, not in the volume)."""
        out = []
        for a, b in zip(self.axes, block_shape, strict=True):
            margin = 0
            for begin in range(0, a.size, b):
                end = min(begin + b, a.size)
                lo, hi = a.span(begin, end)
                margin = max(margin, begin - max(lo, 0), min(hi, a.size) - end)
            out.append(margin)
        return tuple(out)
