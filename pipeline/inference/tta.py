"""Test-time augmentation: predict on flipped/transposed copies of a patch and average.

Each transform is undone on the prediction before averaging, so the result stays aligned with
the input. Flips of all three spatial axes (8 combinations), times the y<->x transpose when the
patch is square in y and x (16 in all). Only for outputs whose channels do not carry a direction
(boundary maps, logits): a flipped affinity channel would describe the opposite neighbour.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import product

import torch

Transform = tuple[tuple[int, ...], bool]  # (flipped tensor dims, transpose y/x)


def transforms(patch: Sequence[int], enabled: bool) -> list[Transform]:
    if not enabled:
        return [((), False)]
    flips = [
        tuple(d for d, f in zip((2, 3, 4), bits, strict=True) if f)
        for bits in product((False, True), repeat=3)
    ]
    transposes = (False, True) if patch[-1] == patch[-2] else (False,)
    return [(f, t) for t in transposes for f in flips]


def apply(x: torch.Tensor, t: Transform) -> torch.Tensor:
    flips, transpose = t
    if flips:
        x = x.flip(flips)
    if transpose:
        x = x.transpose(-1, -2)
    return x


def undo(y: torch.Tensor, t: Transform) -> torch.Tensor:
    flips, transpose = t
    if transpose:
        y = y.transpose(-1, -2)
    if flips:
        y = y.flip(flips)
    return y


def averaged(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, ts: list[Transform]
) -> torch.Tensor:
    """Mean of ``undo(forward(apply(x)))`` over the transforms, in float32."""
    if len(ts) == 1 and ts[0] == ((), False):
        return forward(x).float()
    total: torch.Tensor | None = None
    for t in ts:
        y = undo(forward(apply(x, t)), t).float()
        total = y if total is None else total.add_(y)
    assert total is not None
    return total.div_(len(ts))
