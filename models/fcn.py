"""Fully convolutional network (Long et al. 2015) with the 32s / 16s / 8s skip variants.

Class scores (1x1 convolutions) from the coarsest encoder map are upsampled and summed with
scores from one (16s) or two (8s) finer maps, then upsampled to the input resolution. The
encoder is any that keeps the contract of models.encoders.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import Network, add, build_encoder, json_config, ratio, up_growth
from .errors import ConfigError
from .layers import CONV, IntOrTuple
from .upsample import Upsample

VARIANTS = {"32s": 1, "16s": 2, "8s": 3}


class FCN(Network):
    architecture = "fcn"

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        ndim: int = 2,
        variant: str = "8s",
        widths: Sequence[int] = (16, 32, 64, 128, 256, 512),
        scale_factors: Sequence[IntOrTuple] | IntOrTuple = 2,
        kernel_sizes: Sequence[IntOrTuple] | IntOrTuple = 3,
        down: str = "maxpool",
        up: str = "transposed",
        norm: str | None = "batch",
        activation: str | None = "relu",
        residual: bool = False,
        n_convs: int = 2,
        encoder: str = "conv",
        output: str = "logits",
        offsets: Sequence[Sequence[int]] | None = None,
        normalization: dict | None = None,
    ) -> None:
        super().__init__()
        self._init_task(json_config(locals()))
        if variant not in VARIANTS:
            raise ConfigError(f"variant={variant!r} is unknown; use one of {sorted(VARIANTS)}")
        if up == "max_unpool":
            raise ConfigError(
                "FCN skips span several poolings, so max_unpool cannot be paired with one; "
                "use up='transposed', 'nearest', 'bed_of_nails' or 'interp_conv' (or a UNet)"
            )
        self.encoder = build_encoder(
            encoder,
            in_channels,
            ndim,
            widths,
            scale_factors,
            kernel_sizes,
            down,
            norm,
            activation,
            residual,
            n_convs,
            return_indices=False,
        )
        enc = self.encoder
        n_maps = VARIANTS[variant]
        if len(enc.channels) < n_maps:
            raise ConfigError(
                f"FCN-{variant} fuses the {n_maps} coarsest maps; the encoder has {len(enc.channels)}"
            )
        self.levels = list(range(len(enc.channels) - n_maps, len(enc.channels)))
        self.scores = nn.ModuleList(
            [CONV[ndim](enc.channels[i], out_channels, 1) for i in self.levels]
        )
        self.ups = nn.ModuleList()
        rf = enc.receptive_fields[self.levels[-1]]
        for fine, coarse in zip(self.levels[-2::-1], self.levels[:0:-1], strict=True):
            factor = ratio(enc.strides[coarse], enc.strides[fine])
            upsample = Upsample(up, out_channels, out_channels, factor, ndim)
            self.ups.append(upsample)
            rf = add(rf, up_growth(upsample, enc.strides[coarse], enc.strides[fine]))
        finest = enc.strides[self.levels[0]]
        self.final_up = Upsample(up, out_channels, out_channels, finest, ndim)
        self.receptive_field = add(rf, up_growth(self.final_up, finest, (1,) * ndim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        y = self.scores[-1](feats[self.levels[-1]])
        for j, level in enumerate(self.levels[-2::-1]):
            y = self.ups[j](y) + self.scores[len(self.levels) - 2 - j](feats[level])
        return self.final_up(y)
