"""Upsampling layers, each selectable by name.

- "nearest": repeat each value over its output cell.
- "bed_of_nails": the value at the first position of each output cell, zeros elsewhere.
- "max_unpool": each value at the position its paired max-pooling remembered, zeros elsewhere.
- "transposed": learnable transposed convolution (kernel = stride = factor by default: no
  uneven overlap, so no checkerboard artefacts).
- "interp_conv": interpolation then a same-padded convolution, the remedy for the checkerboard
  artefacts of transposed convolutions whose kernel does not divide by their stride.

The parameter-free modes change the channel count with a 1x1 convolution applied *before*
upsampling (cheaper at low resolution, and max-unpooling needs the pooled channel count).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import ConfigError, InputError
from models.layers import CONV, CONV_T, IntOrTuple, as_tuple, check_ndim, same_padding

UPSAMPLING = ("nearest", "bed_of_nails", "max_unpool", "transposed", "interp_conv")


def bed_of_nails(x: torch.Tensor, factor: tuple[int, ...]) -> torch.Tensor:
    """Each input value at the first position of its output cell; zeros elsewhere."""
    spatial = tuple(s * f for s, f in zip(x.shape[2:], factor, strict=True))
    out = x.new_zeros(x.shape[:2] + spatial)
    out[(slice(None), slice(None)) + tuple(slice(None, None, f) for f in factor)] = x
    return out


def max_unpool(
    x: torch.Tensor, indices: torch.Tensor, factor: tuple[int, ...], output_size=None
) -> torch.Tensor:
    """Put each value of ``x`` at the flat index its max-pooling layer returned."""
    if indices.shape != x.shape:
        raise InputError(
            f"max_unpool: indices of shape {tuple(indices.shape)} do not match the input "
            f"{tuple(x.shape)}; pass the indices of the paired max-pooling layer"
        )
    fn = F.max_unpool2d if x.dim() == 4 else F.max_unpool3d
    return fn(x, indices, factor, factor, output_size=output_size)


class Upsample(nn.Module):
    """Upsample by ``factor`` (per axis) with the named ``mode`` and map channels to
    ``out_channels``. ``forward(x, indices=None, output_size=None)``; ``indices`` is needed
    (only) by "max_unpool"."""

    def __init__(
        self,
        mode: str,
        in_channels: int,
        out_channels: int,
        factor: IntOrTuple = 2,
        ndim: int = 3,
        kernel_size: IntOrTuple | None = None,
        exact_factor: bool = True,
        interpolation: str = "nearest",
    ) -> None:
        super().__init__()
        check_ndim(ndim)
        if mode not in UPSAMPLING:
            raise ConfigError(f"up={mode!r} is unknown; use one of {UPSAMPLING}")
        self.mode = mode
        self.ndim = ndim
        self.factor = as_tuple(factor, ndim, "factor")
        self.interpolation = interpolation
        self.conv_growth = (0,) * ndim  # receptive-field growth at the output resolution
        self.project: nn.Module = nn.Identity()
        if mode in ("nearest", "bed_of_nails", "max_unpool") and in_channels != out_channels:
            self.project = CONV[ndim](in_channels, out_channels, 1)
        if mode == "transposed":
            kernel = as_tuple(kernel_size or self.factor, ndim, "kernel_size")
            pad, out_pad = (0,) * ndim, (0,) * ndim
            if exact_factor:  # output exactly factor x input: trim the overhang of big kernels
                if any(k < f for k, f in zip(kernel, self.factor, strict=True)):
                    raise ConfigError(f"transposed kernel {kernel} is smaller than {self.factor}")
                pad = tuple((k - f + 1) // 2 for k, f in zip(kernel, self.factor, strict=True))
                out_pad = tuple(
                    f - k + 2 * p for k, f, p in zip(kernel, self.factor, pad, strict=True)
                )
            self.conv = CONV_T[ndim](
                in_channels, out_channels, kernel, self.factor, padding=pad, output_padding=out_pad
            )
        elif mode == "interp_conv":
            if interpolation not in ("nearest", "linear"):
                raise ConfigError(f"interpolation={interpolation!r}; use 'nearest' or 'linear'")
            kernel = as_tuple(kernel_size or 3, ndim, "kernel_size")
            self.conv = CONV[ndim](in_channels, out_channels, kernel, padding=same_padding(kernel))
            self.conv_growth = tuple(k - 1 for k in kernel)

    def forward(
        self, x: torch.Tensor, indices: torch.Tensor | None = None, output_size=None
    ) -> torch.Tensor:
        if x.dim() != self.ndim + 2:
            raise InputError(
                f"{self.mode} upsampling expects a {self.ndim + 2}D tensor (N, C, *spatial), "
                f"got shape {tuple(x.shape)}"
            )
        if self.mode == "transposed":
            return self.conv(x)
        if self.mode == "interp_conv":
            interp = self.interpolation
            if interp == "linear":
                interp = "bilinear" if self.ndim == 2 else "trilinear"
            return self.conv(F.interpolate(x, scale_factor=self.factor, mode=interp))
        x = self.project(x)
        if self.mode == "nearest":
            return F.interpolate(x, scale_factor=self.factor, mode="nearest")
        if self.mode == "bed_of_nails":
            return bed_of_nails(x, self.factor)
        if indices is None:
            raise InputError(
                "max_unpool upsampling needs the indices of its paired max-pooling layer; "
                "build the encoder with down='maxpool'"
            )
        return max_unpool(x, indices, self.factor, output_size)
