"""The convolutional (U-Net) encoder: a :class:`ConvBlock` per stage, downsampling in between."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.encoders.config import EncoderConfig
from models.encoders.contract import Encoder, FeatureList, Shape
from models.errors import ConfigError
from models.layers import ConvBlock, as_tuple, check_ndim, make_downsample


class ConvEncoder(Encoder):
    """``config.widths[i]`` channels at stage ``i``; ``config.scale_factors[i]`` (int or per-axis
    tuple, e.g. (1, 2, 2) for anisotropic data) downsamples stage ``i`` to ``i + 1``;
    ``config.kernel_sizes`` per stage (one value for all stages, or a list). With
    ``return_indices`` (and max-pooling) the pooling indices come with the feature maps."""

    def __init__(
        self, config: EncoderConfig, in_channels: int = 1, ndim: int = 3, return_indices=False
    ) -> None:
        super().__init__()
        self.ndim = check_ndim(ndim)
        self.in_channels = in_channels
        depth = len(config.widths)
        if depth < 1:
            raise ConfigError("widths must name at least one level")
        factors = _per_level(config.scale_factors, depth - 1, ndim, "scale_factors")
        kernels = _per_level(config.kernel_sizes, depth, ndim, "kernel_sizes")
        self.out_channels = [int(w) for w in config.widths]
        self.returns_indices = bool(return_indices) and config.down == "maxpool"
        self.blocks = nn.ModuleList()
        self.downs = nn.ModuleList()
        stride, rf = (1,) * ndim, (1,) * ndim
        self.strides, self.receptive_fields = [], []
        for level in range(depth):
            if level > 0:
                f = factors[level - 1]
                channels = self.out_channels[level - 1]
                self.downs.append(make_downsample(config.down, channels, f, ndim, return_indices))
                rf = tuple(r + (fi - 1) * s for r, fi, s in zip(rf, f, stride, strict=True))
                stride = tuple(s * fi for s, fi in zip(stride, f, strict=True))
            c_in = in_channels if level == 0 else channels
            block = _stage_block(config, c_in, level, kernels[level], ndim)
            self.blocks.append(block)
            grow = block.receptive_growth()
            rf = tuple(r + g * s for r, g, s in zip(rf, grow, stride, strict=True))
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


def _stage_block(
    config: EncoderConfig, c_in: int, level: int, kernel: Shape, ndim: int
) -> ConvBlock:
    return ConvBlock(
        c_in,
        int(config.widths[level]),
        ndim,
        kernel,
        config.n_convs,
        config.norm,
        config.activation,
        config.residual,
    )


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
