"""U-Net in 2D and (anisotropic) 3D: an encoder, a decoder with skips, a 1x1 head.

Depth and widths come from ``widths``; ``scale_factors`` per level (e.g. [(1, 2, 2), (2, 2, 2)]
for data with thick sections); skips by concatenation or addition; any of the upsampling modes
of models.upsample. Same padding: the output has the input's spatial shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.base import Network, add, build_encoder, json_config, ratio, up_growth
from models.errors import ConfigError
from models.layers import CONV, ConvBlock, IntOrTuple
from models.upsample import Upsample

SKIPS = ("concat", "add")


class UNet(Network):
    architecture = "unet"

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        ndim: int = 3,
        widths: Sequence[int] = (12, 24, 48),
        scale_factors: Sequence[IntOrTuple] | IntOrTuple = 2,
        kernel_sizes: Sequence[IntOrTuple] | IntOrTuple = 3,
        down: str = "maxpool",
        up: str = "transposed",
        skip: str = "concat",
        norm: str | None = "batch",
        activation: str | None = "relu",
        residual: bool = False,
        n_convs: int = 2,
        encoder: str = "conv",
        output: str = "boundary",
        offsets: Sequence[Sequence[int]] | None = None,
        normalization: dict | None = None,
    ) -> None:
        super().__init__()
        self._init_task(json_config(locals()))
        if skip not in SKIPS:
            raise ConfigError(f"skip={skip!r} is unknown; use one of {SKIPS}")
        if up == "max_unpool" and down != "maxpool":
            raise ConfigError(
                "up='max_unpool' needs down='maxpool' (it reuses the pooling indices)"
            )
        self.skip = skip
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
            return_indices=up == "max_unpool",
        )
        enc = self.encoder
        if up == "max_unpool" and encoder != "conv":
            raise ConfigError("up='max_unpool' needs encoder='conv' (it returns pooling indices)")
        self.ups, self.blocks = nn.ModuleList(), nn.ModuleList()
        rf = enc.receptive_fields[-1]
        channels = enc.channels[-1]
        for i in reversed(range(len(enc.channels) - 1)):
            factor = ratio(enc.strides[i + 1], enc.strides[i])
            upsample = Upsample(up, channels, enc.channels[i], factor, ndim)
            self.ups.append(upsample)
            c_in = 2 * enc.channels[i] if skip == "concat" else enc.channels[i]
            kernel = _block_kernel(enc, i)
            block = ConvBlock(
                c_in, enc.channels[i], ndim, kernel, n_convs, norm, activation, residual
            )
            self.blocks.append(block)
            rf = add(rf, up_growth(upsample, enc.strides[i + 1], enc.strides[i]))
            rf = tuple(max(a, b) for a, b in zip(rf, enc.receptive_fields[i], strict=True))
            rf = add(
                rf,
                tuple(
                    g * s for g, s in zip(block.receptive_growth(), enc.strides[i], strict=False)
                ),
            )
            channels = enc.channels[i]
        self.final_up: Upsample | None = None
        if any(s != 1 for s in enc.strides[0]):  # e.g. a ResNet's first map is at stride 2
            mode = "nearest" if up == "max_unpool" else up
            self.final_up = Upsample(mode, channels, channels, enc.strides[0], ndim)
            rf = add(rf, up_growth(self.final_up, enc.strides[0], (1,) * ndim))
        self.head = CONV[ndim](channels, out_channels, 1)
        self.receptive_field = rf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        y = feats[-1]
        for j, i in enumerate(reversed(range(len(feats) - 1))):
            y = self.ups[j](y, indices=feats.indices[i], output_size=feats[i].shape[2:])
            y = torch.cat([y, feats[i]], dim=1) if self.skip == "concat" else y + feats[i]
            y = self.blocks[j](y)
        if self.final_up is not None:
            y = self.final_up(y)
        return self.head(y)


def _block_kernel(enc, level: int):
    blocks = getattr(enc, "blocks", None)
    return blocks[level].kernel_size if blocks is not None else 3
