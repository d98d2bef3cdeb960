"""U-Net in 2D and (anisotropic) 3D: an encoder, a decoder with skips, a 1x1 head.

The encoder comes from an :class:`EncoderConfig` (depth and widths, ``scale_factors`` per level,
e.g. [(1, 2, 2), (2, 2, 2)] for data with thick sections); the decoder blocks repeat the
encoder's block options. Skips by concatenation or addition; any of the upsampling modes of
models.upsample. Same padding: the output has the input's spatial shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from models.base import Network, add, arguments, ratio, up_growth
from models.encoders import Encoder, EncoderConfig
from models.errors import ConfigError
from models.layers import CONV, ConvBlock
from models.upsample import Upsample

SKIPS = ("concat", "add")
UNET_ENCODER = EncoderConfig(widths=(12, 24, 48))


class UNet(Network):
    architecture = "unet"

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        ndim: int = 3,
        encoder: EncoderConfig | Mapping | None = None,
        up: str = "transposed",
        skip: str = "concat",
        output: str = "boundary",
        offsets: Sequence[Sequence[int]] | None = None,
        normalization: dict | None = None,
        aux_channels: int = 0,
    ) -> None:
        super().__init__()
        if skip not in SKIPS:
            raise ConfigError(f"skip={skip!r} is unknown; use one of {SKIPS}")
        enc_config = self._init_network(arguments(locals()), UNET_ENCODER)
        self.skip = skip
        self.ups, self.blocks = nn.ModuleList(), nn.ModuleList()
        enc = self.encoder
        rf = enc.receptive_fields[-1]
        channels = enc.out_channels[-1]
        for i in reversed(range(len(enc.out_channels) - 1)):
            upsample = Upsample(up, channels, enc.out_channels[i], _factor(enc, i), ndim)
            self.ups.append(upsample)
            block = _decoder_block(enc, enc_config, i, skip)
            self.blocks.append(block)
            rf = add(rf, up_growth(upsample, enc.strides[i + 1], enc.strides[i]))
            rf = tuple(max(a, b) for a, b in zip(rf, enc.receptive_fields[i], strict=True))
            growth = block.receptive_growth()
            rf = add(rf, tuple(g * s for g, s in zip(growth, enc.strides[i], strict=True)))
            channels = enc.out_channels[i]
        self.final_up: Upsample | None = None
        if any(s != 1 for s in enc.strides[0]):  # e.g. a ResNet's first map is at stride 2
            mode = "nearest" if up == "max_unpool" else up
            self.final_up = Upsample(mode, channels, channels, enc.strides[0], ndim)
            rf = add(rf, up_growth(self.final_up, enc.strides[0], (1,) * ndim))
        self.head = CONV[ndim](channels, out_channels + aux_channels, 1)
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


def _factor(enc: Encoder, level: int) -> tuple[int, ...]:
    """Upsampling from map ``level + 1`` to map ``level``."""
    return ratio(enc.strides[level + 1], enc.strides[level])


def _decoder_block(enc: Encoder, config: EncoderConfig, level: int, skip: str) -> ConvBlock:
    """The block after the skip into map ``level``: that map's kernel and channels, the
    encoder's block options."""
    channels = enc.out_channels[level]
    blocks = getattr(enc, "blocks", None)
    kernel = blocks[level].kernel_size if blocks is not None else 3
    return ConvBlock(
        2 * channels if skip == "concat" else channels,
        channels,
        enc.ndim,
        kernel,
        config.n_convs,
        config.norm,
        config.activation,
        config.residual,
    )
