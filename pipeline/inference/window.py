"""The blending window: how much each voxel of a patch counts where patches overlap.

A network with 'same' padding is least reliable near a patch's border (it sees zero padding
there), so overlapping patches are blended with a separable Gaussian that peaks at the centre:
``w(x) = prod_i exp(-x_i^2 / (2 (sigma_scale * patch_i)^2))`` with ``x_i`` measured from the
patch centre. Weights are floored at ``max(min(w), 1e-3)`` so corners still count a little and
no voxel ends up with a zero weight sum. Sums are normalised by the total weight per voxel, so
the window's scale is irrelevant. This is MONAI's "gaussian" importance map (same sigma, same
floor), so a petaseg prediction equals MONAI's ``sliding_window_inference`` on the same network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

MIN_WEIGHT = 1e-3


def gaussian_window(
    patch: Sequence[int],
    sigma_scale: float = 0.125,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The float32 window of shape ``patch``."""
    window: torch.Tensor | None = None
    for axis, size in enumerate(patch):
        centre = (size - 1) / 2.0
        x = torch.arange(size, dtype=torch.float32, device=device) - centre
        sigma = sigma_scale * size
        g = torch.exp(x * x / (-2.0 * sigma * sigma))
        if window is None:
            window = g
        else:
            window = window.unsqueeze(-1) * g.reshape((1,) * axis + (size,))
    assert window is not None
    floor = max(float(window.min()), MIN_WEIGHT)
    return window.clamp_(min=floor)


def constant_window(patch: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """Equal weights: plain averaging of overlapping patches."""
    return torch.ones(tuple(patch), dtype=torch.float32, device=device)
