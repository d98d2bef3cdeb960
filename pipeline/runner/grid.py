"""Blocks: write ROIs that tile a total ROI on a fixed grid, and read ROIs grown by context.

A block is named by its index in C order over the grid, so ids are stable for a given total ROI
and block shape, and any block can be rebuilt from its id alone: nothing lists all blocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.geometry import Coord, Roi, as_coord


@dataclass(frozen=True)
class Block:
    block_id: int
    index: Coord
    read_roi: Roi
    write_roi: Roi


@dataclass(frozen=True)
class BlockGrid:
    """``edge`` says what happens to a read ROI that reaches past ``read_bounds``: "clip" cuts it
    to the bounds (the stage sees less context at the volume border); "pad" leaves it whole (the
    stage reads with padding)."""

    total_roi: Roi
    block_shape: Coord
    context: Coord
    read_bounds: Roi | None = None
    edge: str = "clip"

    def __post_init__(self) -> None:
        nd = self.total_roi.ndim
        object.__setattr__(self, "block_shape", as_coord(self.block_shape, nd))
        object.__setattr__(self, "context", as_coord(self.context, nd))
        if any(b <= 0 for b in self.block_shape):
            raise ValueError(f"block shape must be positive, got {self.block_shape}")
        if any(c < 0 for c in self.context):
            raise ValueError(f"context must not be negative, got {self.context}")
        if self.edge not in ("clip", "pad"):
            raise ValueError(f"edge must be 'clip' or 'pad', got {self.edge!r}")
        grid = tuple(
            math.ceil(s / b) for s, b in zip(self.total_roi.shape, self.block_shape, strict=True)
        )
        object.__setattr__(self, "_grid_shape", grid)
        object.__setattr__(self, "_num_blocks", 0 if self.total_roi.empty else math.prod(grid))

    @property
    def grid_shape(self) -> Coord:
        return self._grid_shape

    @property
    def num_blocks(self) -> int:
        return self._num_blocks

    def index_of(self, block_id: int) -> Coord:
        index = []
        for n in reversed(self.grid_shape):
            block_id, i = divmod(block_id, n)
            index.append(i)
        return tuple(reversed(index))

    def id_of(self, index: Coord) -> int:
        block_id = 0
        for i, n in zip(index, self.grid_shape, strict=True):
            block_id = block_id * n + i
        return block_id

    def block(self, block_id: int) -> Block:
        if not 0 <= block_id < self.num_blocks:
            raise IndexError(f"block id {block_id} outside 0..{self.num_blocks - 1}")
        index = self.index_of(block_id)
        t_begin, t_end = self.total_roi.begin, self.total_roi.end
        begin = tuple(t + i * b for t, i, b in zip(t_begin, index, self.block_shape, strict=True))
        end = tuple(min(x + b, e) for x, b, e in zip(begin, self.block_shape, t_end, strict=True))
        write_roi = Roi._trusted(begin, tuple(e - x for x, e in zip(begin, end, strict=True)))
        r_begin = tuple(x - c for x, c in zip(begin, self.context, strict=True))
        r_end = tuple(e + c for e, c in zip(end, self.context, strict=True))
        if self.edge == "clip":
            bounds = self.read_bounds or self.total_roi
            r_begin = tuple(max(x, b) for x, b in zip(r_begin, bounds.begin, strict=True))
            r_end = tuple(min(x, e) for x, e in zip(r_end, bounds.end, strict=True))
        read_roi = Roi._trusted(r_begin, tuple(e - x for x, e in zip(r_begin, r_end, strict=True)))
        return Block(block_id, index, read_roi, write_roi)

    def blocks(self, start: int = 0, stop: int | None = None) -> Iterator[Block]:
        stop = self.num_blocks if stop is None else min(stop, self.num_blocks)
        for block_id in range(start, stop):
            yield self.block(block_id)
