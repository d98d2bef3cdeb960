"""Convolution blocks and downsampling for 2D and (anisotropic) 3D networks.

Every convolution pads by half its kernel ("same" padding), so a network built from these
blocks maps an input of shape S to an output of shape S: tiles blend without seams and a
prediction lines up voxel by voxel with its raw data.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.errors import ConfigError

IntOrTuple = int | Sequence[int]

CONV = {2: nn.Conv2d, 3: nn.Conv3d}
CONV_T = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
MAX_POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}
BATCH_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
INSTANCE_NORM = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}

NORMS = ("batch", "instance", "group", None)
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh", None)


def as_tuple(value: IntOrTuple, ndim: int, name: str = "value") -> tuple[int, ...]:
    """An int repeated ``ndim`` times, or a sequence checked to have ``ndim`` entries."""
    if isinstance(value, int):
        return (value,) * ndim
    out = tuple(int(v) for v in value)
    if len(out) != ndim:
        raise ConfigError(
            f"{name}={list(value)} has {len(out)} entries; a {ndim}D network needs {ndim}"
        )
    return out


def check_ndim(ndim: int) -> int:
    if ndim not in (2, 3):
        raise ConfigError(f"ndim={ndim} is not supported; use 2 or 3")
    return ndim


def make_norm(name: str | None, channels: int, ndim: int) -> nn.Module:
    """A normalisation layer by name. Batch norm is per-voxel at inference (eval mode), so
    blockwise predictions equal whole-volume ones; instance and group norm are not."""
    if name is None or name == "none":
        return nn.Identity()
    if name == "batch":
        return BATCH_NORM[ndim](channels)
    if name == "instance":
        return INSTANCE_NORM[ndim](channels, affine=True)
    if name == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    raise ConfigError(f"norm={name!r} is unknown; use one of {NORMS}")


def make_activation(name: str | None) -> nn.Module:
    """An activation by name (None or "none" for identity)."""
    table = {
        "relu": lambda: nn.ReLU(inplace=True),
        "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=True),
        "elu": lambda: nn.ELU(inplace=True),
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
    }
    if name is None or name == "none":
        return nn.Identity()
    if name not in table:
        raise ConfigError(f"activation={name!r} is unknown; use one of {ACTIVATIONS}")
    return table[name]()


def same_padding(kernel: Sequence[int]) -> tuple[int, ...]:
    if any(k % 2 == 0 for k in kernel):
        raise ConfigError(
            f"kernel size {tuple(kernel)} has an even entry; 'same' padding needs odd"
        )
    return tuple(k // 2 for k in kernel)


class ConvBlock(nn.Module):
    """``n_convs`` x (conv -> norm -> activation), same padding; optionally residual.

    Anisotropic kernels such as (1, 3, 3) suit thick sections. With ``residual=True`` the input
    (projected by a 1x1 convolution when the channel count changes) is added before the last
    activation, as in ResNet.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ndim: int = 3,
        kernel_size: IntOrTuple = 3,
        n_convs: int = 2,
        norm: str | None = "batch",
        activation: str | None = "relu",
        residual: bool = False,
    ) -> None:
        super().__init__()
        check_ndim(ndim)
        if n_convs < 1:
            raise ConfigError(f"n_convs={n_convs} must be at least 1")
        self.kernel_size = as_tuple(kernel_size, ndim, "kernel_size")
        self.n_convs = n_convs
        self.residual = residual
        pad = same_padding(self.kernel_size)
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(n_convs):
            layers.append(
                CONV[ndim](channels, out_channels, self.kernel_size, padding=pad, bias=norm is None)
            )
            layers.append(make_norm(norm, out_channels, ndim))
            if i < n_convs - 1 or not residual:
                layers.append(make_activation(activation))
            channels = out_channels
        self.body = nn.Sequential(*layers)
        self.skip: nn.Module | None = None
        if residual:
            self.skip = (
                nn.Identity()
                if in_channels == out_channels
                else CONV[ndim](in_channels, out_channels, 1, bias=False)
            )
            self.out_act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.skip is not None:
            y = self.out_act(y + self.skip(x))
        return y

    def receptive_growth(self) -> tuple[int, ...]:
        """Voxels (at this block's resolution) the block adds to the receptive field per axis."""
        return tuple(self.n_convs * (k - 1) for k in self.kernel_size)


class MaxPoolDown(nn.Module):
    """Max-pooling by ``factor`` (kernel = stride = factor). With ``return_indices=True`` the
    forward returns ``(pooled, indices)`` so a paired max-unpooling can put values back."""

    def __init__(self, factor: IntOrTuple, ndim: int = 3, return_indices: bool = False) -> None:
        super().__init__()
        self.factor = as_tuple(factor, check_ndim(ndim), "factor")
        self.return_indices = return_indices
        self.pool = MAX_POOL[ndim](self.factor, self.factor, return_indices=return_indices)

    def forward(self, x: torch.Tensor):
        return self.pool(x)


class StridedConvDown(nn.Module):
    """Learned downsampling: a convolution with kernel = stride = factor."""

    def __init__(self, in_channels: int, out_channels: int, factor: IntOrTuple, ndim: int = 3):
        super().__init__()
        self.factor = as_tuple(factor, check_ndim(ndim), "factor")
        self.return_indices = False
        self.conv = CONV[ndim](in_channels, out_channels, self.factor, stride=self.factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


DOWNSAMPLING = ("maxpool", "strided")


def make_downsample(
    name: str, channels: int, factor: IntOrTuple, ndim: int = 3, return_indices: bool = False
) -> nn.Module:
    """Downsampling by name: "maxpool" (optionally returning indices) or "strided" (conv)."""
    if name == "maxpool":
        return MaxPoolDown(factor, ndim, return_indices=return_indices)
    if name == "strided":
        return StridedConvDown(channels, channels, factor, ndim)
    raise ConfigError(f"down={name!r} is unknown; use one of {DOWNSAMPLING}")
