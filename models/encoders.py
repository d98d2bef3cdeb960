"""Encoders and the encoder contract every decoder or head relies on.

An encoder is an ``nn.Module`` whose ``forward(x)`` returns a :class:`FeatureList`: feature maps
from the highest resolution to the lowest, and which has these attributes:

- ``ndim``: 2 or 3 spatial dimensions;
- ``in_channels``: channels of the input it accepts;
- ``channels``: channels of each feature map;
- ``strides``: per feature map, its stride relative to the input (a tuple per axis);
- ``receptive_fields``: per feature map, the input extent (voxels per axis) one of its voxels sees.

``FeatureList.indices[i]`` holds the max-pooling indices used to go from map ``i`` to map
``i + 1`` (or None), so a decoder can max-unpool. Any head can therefore sit on any encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.errors import ConfigError, InputError
from models.layers import ConvBlock, IntOrTuple, as_tuple, check_ndim, make_downsample

Shape = tuple[int, ...]


class FeatureList(list):
    """A list of feature maps (highest resolution first) with the pooling ``indices``."""

    def __init__(self, maps: Sequence[torch.Tensor], indices: Sequence | None = None) -> None:
        super().__init__(maps)
        self.indices = list(indices) if indices is not None else [None] * len(maps)


class Encoder(nn.Module):
    """Base of the contract; see the module docstring."""

    ndim: int
    in_channels: int
    channels: list[int]
    strides: list[Shape]
    receptive_fields: list[Shape]

    @property
    def size_multiple(self) -> Shape:
        """Valid input sizes are multiples of the coarsest stride, per axis."""
        return self.strides[-1]

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse tensors with the wrong rank, channel count or a size the strides do not fit."""
        if x.dim() != self.ndim + 2:
            raise InputError(
                f"expected a {self.ndim + 2}D tensor (batch, channels, {self.ndim} spatial axes), "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise InputError(
                f"input has {x.shape[1]} channel(s) but the network takes {self.in_channels}; "
                "give it raw data with that many channels"
            )
        spatial = tuple(x.shape[2:])
        multiple = self.size_multiple
        if any(s % m for s, m in zip(spatial, multiple, strict=True)):
            fixed = tuple(-(-s // m) * m for s, m in zip(spatial, multiple, strict=True))
            raise InputError(
                f"input spatial size {spatial} does not fit the network's stride: each axis must "
                f"be a multiple of {multiple} (e.g. pad to {fixed})"
            )


class ConvEncoder(Encoder):
    """The U-Net encoder: a :class:`ConvBlock` per level with downsampling in between.

    ``widths[i]`` channels at level ``i``; ``scale_factors[i]`` (int or per-axis tuple, e.g.
    (1, 2, 2) for anisotropic data) downsamples level ``i`` to ``i + 1``; ``kernel_sizes`` per
    level (one value for all levels, or a list).
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (12, 24, 48),
        ndim: int = 3,
        scale_factors: Sequence[IntOrTuple] | IntOrTuple = 2,
        kernel_sizes: Sequence[IntOrTuple] | IntOrTuple = 3,
        down: str = "maxpool",
        norm: str | None = "batch",
        activation: str | None = "relu",
        residual: bool = False,
        n_convs: int = 2,
        return_indices: bool = False,
    ) -> None:
        super().__init__()
        self.ndim = check_ndim(ndim)
        self.in_channels = in_channels
        depth = len(widths)
        if depth < 1:
            raise ConfigError("widths must name at least one level")
        factors = _per_level(scale_factors, depth - 1, ndim, "scale_factors")
        kernels = _per_level(kernel_sizes, depth, ndim, "kernel_sizes")
        self.channels = [int(w) for w in widths]
        self.blocks = nn.ModuleList()
        self.downs = nn.ModuleList()
        stride, rf = (1,) * ndim, (1,) * ndim
        self.strides, self.receptive_fields = [], []
        for level in range(depth):
            if level > 0:
                f = factors[level - 1]
                self.downs.append(
                    make_downsample(down, self.channels[level - 1], f, ndim, return_indices)
                )
                rf = tuple(r + (fi - 1) * s for r, fi, s in zip(rf, f, stride, strict=True))
                stride = tuple(s * fi for s, fi in zip(stride, f, strict=True))
            c_in = in_channels if level == 0 else self.channels[level - 1]
            block = ConvBlock(
                c_in,
                self.channels[level],
                ndim,
                kernels[level],
                n_convs,
                norm,
                activation,
                residual,
            )
            self.blocks.append(block)
            rf = tuple(
                r + g * s for r, g, s in zip(rf, block.receptive_growth(), stride, strict=True)
            )
            self.strides.append(stride)
            self.receptive_fields.append(rf)

    def forward(self, x: torch.Tensor) -> FeatureList:
        self.check_input(x)
        maps, indices = [], []
        for level, block in enumerate(self.blocks):
            if level > 0:
                down = self.downs[level - 1]
                out = down(x)
                if getattr(down, "return_indices", False):
                    x, idx = out
                else:
                    x, idx = out, None
                indices.append(idx)
            x = block(x)
            maps.append(x)
        indices.append(None)
        return FeatureList(maps, indices)


class ResNetEncoder(Encoder):
    """A 2D torchvision ResNet (random init; no weights are downloaded) as an encoder, with
    maps at strides 2, 4, 8, 16 and 32 and a first convolution for ``in_channels``."""

    def __init__(self, name: str = "resnet18", in_channels: int = 1) -> None:
        super().__init__()
        import torchvision

        builders = {n: getattr(torchvision.models, n) for n in ("resnet18", "resnet34", "resnet50")}
        if name not in builders:
            raise ConfigError(f"encoder {name!r} is unknown; use one of {sorted(builders)}")
        net = builders[name](weights=None)
        net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.ndim, self.in_channels = 2, in_channels
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.pool = net.maxpool
        self.layers = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        expansion = 4 if name == "resnet50" else 1
        self.channels = [64] + [c * expansion for c in (64, 128, 256, 512)]
        self.strides = [(s, s) for s in (2, 4, 8, 16, 32)]
        self.receptive_fields = _resnet_receptive_fields(self)

    def forward(self, x: torch.Tensor) -> FeatureList:
        self.check_input(x)
        x = self.stem(x)
        maps = [x]
        x = self.pool(x)
        for layer in self.layers:
            x = layer(x)
            maps.append(x)
        return FeatureList(maps)


def _per_level(value, n: int, ndim: int, name: str) -> list[Shape]:
    """One value per level. An int, or a flat sequence of ``ndim`` ints (per axis), applies to
    every level; otherwise give one entry per level (ints or per-axis sequences)."""
    flat = isinstance(value, Sequence) and all(isinstance(v, int) for v in value)
    if isinstance(value, int) or (flat and len(value) == ndim):
        return [as_tuple(value, ndim, name)] * n
    values = list(value)
    if len(values) != n:
        raise ConfigError(
            f"{name} has {len(values)} entries; this network needs {n} (one per level)"
        )
    return [as_tuple(v, ndim, name) for v in values]


def _resnet_receptive_fields(enc: ResNetEncoder) -> list[Shape]:
    """Longest-path receptive field: every 3x3/7x7 conv and pool in order (1x1 convs add none)."""
    rf, jump, out = 1, 1, []

    def walk(module: nn.Module) -> None:
        nonlocal rf, jump
        for name, m in module.named_modules():
            if "downsample" in name:  # the shortcut path; the main path already strides
                continue
            if isinstance(m, nn.Conv2d | nn.MaxPool2d):
                k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
                s = m.stride if isinstance(m.stride, int) else m.stride[0]
                if k > 1:
                    rf += (k - 1) * jump
                jump *= s

    walk(enc.stem)
    out.append((rf, rf))
    walk(enc.pool)
    for layer in enc.layers:
        walk(layer)
        out.append((rf, rf))
    return out
