"""Regions of interest: integer boxes in world units (nm) or voxels, and grid snapping.

Everything blockwise is arithmetic on these boxes, so they are exact (ints only) and immutable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Coord = tuple[int, ...]


def as_coord(values: Iterable[int] | int, ndim: int | None = None) -> Coord:
    """Turn a scalar or sequence into an int tuple (a scalar is repeated ``ndim`` times)."""
    if isinstance(values, int):
        if ndim is None:
            raise ValueError("a scalar coordinate needs ndim")
        return (int(values),) * ndim
    out = tuple(int(v) for v in values)
    if ndim is not None and len(out) != ndim:
        raise ValueError(f"expected {ndim} values, got {len(out)}: {out}")
    return out


@dataclass(frozen=True)
class Roi:
    """A box ``[begin, begin + shape)`` on an integer lattice."""

    begin: Coord
    shape: Coord

    def __post_init__(self) -> None:
        begin = as_coord(self.begin)
        shape = as_coord(self.shape, len(begin))
        if any(s < 0 for s in shape):
            raise ValueError(f"Roi shape must not be negative, got {shape}")
        object.__setattr__(self, "begin", begin)
        object.__setattr__(self, "shape", shape)

    @classmethod
    def _trusted(cls, begin: Coord, shape: Coord) -> Roi:
        """Build from int tuples already known to be valid (the block grid's hot path)."""
        roi = object.__new__(cls)
        object.__setattr__(roi, "begin", begin)
        object.__setattr__(roi, "shape", shape)
        return roi

    @classmethod
    def from_bounds(cls, begin: Sequence[int], end: Sequence[int]) -> Roi:
        return cls(tuple(begin), tuple(max(0, e - b) for b, e in zip(begin, end, strict=True)))

    @classmethod
    def from_slices(cls, slices: Sequence[slice]) -> Roi:
        return cls.from_bounds([s.start for s in slices], [s.stop for s in slices])

    @property
    def end(self) -> Coord:
        return tuple(b + s for b, s in zip(self.begin, self.shape, strict=True))

    @property
    def ndim(self) -> int:
        return len(self.begin)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def empty(self) -> bool:
        return any(s == 0 for s in self.shape)

    @property
    def center(self) -> tuple[float, ...]:
        return tuple(b + s / 2 for b, s in zip(self.begin, self.shape, strict=True))

    def grow(self, neg: Sequence[int] | int, pos: Sequence[int] | int | None = None) -> Roi:
        """Grow by ``neg`` before ``begin`` and ``pos`` after ``end`` (``pos`` defaults to ``neg``)."""
        neg = as_coord(neg, self.ndim)
        pos = neg if pos is None else as_coord(pos, self.ndim)
        begin = tuple(b - n for b, n in zip(self.begin, neg, strict=True))
        end = tuple(e + p for e, p in zip(self.end, pos, strict=True))
        return Roi.from_bounds(begin, end)

    def shift(self, offset: Sequence[int] | int) -> Roi:
        offset = as_coord(offset, self.ndim)
        return Roi(tuple(b + o for b, o in zip(self.begin, offset, strict=True)), self.shape)

    def intersect(self, other: Roi) -> Roi:
        begin = tuple(max(a, b) for a, b in zip(self.begin, other.begin, strict=True))
        end = tuple(min(a, b) for a, b in zip(self.end, other.end, strict=True))
        end = tuple(max(b, e) for b, e in zip(begin, end, strict=True))
        return Roi.from_bounds(begin, end)

    def contains(self, other: Roi | Sequence[int]) -> bool:
        if isinstance(other, Roi):
            if other.empty:
                return True
            return all(
                sb <= ob and oe <= se
                for sb, ob, oe, se in zip(self.begin, other.begin, other.end, self.end, strict=True)
            )
        return all(b <= p < e for b, p, e in zip(self.begin, other, self.end, strict=True))

    def snap_to_grid(self, grid: Sequence[int] | int, mode: str = "grow") -> Roi:
        """Snap begin and end to multiples of ``grid``: outward, inward, or to the closest."""
        grid = as_coord(grid, self.ndim)
        if mode == "grow":
            begin = [math.floor(b / g) * g for b, g in zip(self.begin, grid, strict=True)]
            end = [math.ceil(e / g) * g for e, g in zip(self.end, grid, strict=True)]
        elif mode == "shrink":
            begin = [math.ceil(b / g) * g for b, g in zip(self.begin, grid, strict=True)]
            end = [math.floor(e / g) * g for e, g in zip(self.end, grid, strict=True)]
        elif mode == "closest":
            begin = [round(b / g) * g for b, g in zip(self.begin, grid, strict=True)]
            end = [round(e / g) * g for e, g in zip(self.end, grid, strict=True)]
        else:
            raise ValueError(f"snap mode must be grow, shrink or closest, got {mode!r}")
        return Roi.from_bounds(begin, end)

    def is_aligned(self, grid: Sequence[int] | int) -> bool:
        grid = as_coord(grid, self.ndim)
        return all(
            b % g == 0 and s % g == 0 for b, s, g in zip(self.begin, self.shape, grid, strict=True)
        )

    def to_voxels(self, voxel_size: Sequence[int]) -> Roi:
        """World (nm) to voxel units; raises if the ROI is not on the voxel grid."""
        voxel_size = as_coord(voxel_size, self.ndim)
        if not self.is_aligned(voxel_size):
            raise ValueError(f"{self} is not a multiple of the voxel size {voxel_size}")
        return Roi(
            tuple(b // v for b, v in zip(self.begin, voxel_size, strict=True)),
            tuple(s // v for s, v in zip(self.shape, voxel_size, strict=True)),
        )

    def to_world(self, voxel_size: Sequence[int]) -> Roi:
        voxel_size = as_coord(voxel_size, self.ndim)
        return Roi(
            tuple(b * v for b, v in zip(self.begin, voxel_size, strict=True)),
            tuple(s * v for s, v in zip(self.shape, voxel_size, strict=True)),
        )

    def to_slices(self) -> tuple[slice, ...]:
        return tuple(slice(b, e) for b, e in zip(self.begin, self.end, strict=True))

    def __str__(self) -> str:
        return f"Roi[{self.begin} .. {self.end}) shape {self.shape}"


def in_nm(voxels: Sequence[int], voxel_size: Sequence[int]) -> Coord:
    """A shape or offset in voxels, in world units (nm)."""
    return tuple(int(n) * int(v) for n, v in zip(voxels, voxel_size, strict=True))
