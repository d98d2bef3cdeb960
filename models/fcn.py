"""Fully convolutional network (Long et al. 2015) with the 32s / 16s / 8s skip variants.

Class scores (1x1 convolutions) from the coarsest encoder map are upsampled and summed with
scores from one (16s) or two (8s) finer maps, then upsampled to the input resolution. The
encoder is any that keeps the contract of models.encoders (an :class:`EncoderConfig`).

FCN upsampling jumps span several poolings (x8 for the last step of FCN-8s), so "max_unpool" is
done SegNet style by :class:`UnpoolPath`: one unpooling per pooling crossed, each with that
pooling's indices at that pooling's channel count and followed by a 3x3 convolution that fills the
zeros unpooling leaves (without it, 32s scores reach one pixel per 32 x 32 cell), then 1x1 back to
the class scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from models.base import Network, add, arguments, ratio, up_growth
from models.encoders import Encoder, EncoderConfig
from models.errors import ConfigError
from models.layers import CONV
from models.upsample import Upsample

VARIANTS = {"32s": 1, "16s": 2, "8s": 3}
FCN_ENCODER = EncoderConfig(widths=(16, 32, 64, 128, 256, 512))


class FCN(Network):
    architecture = "fcn"

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        ndim: int = 2,
        variant: str = "8s",
        encoder: EncoderConfig | Mapping | None = None,
        up: str = "transposed",
        output: str = "logits",
        offsets: Sequence[Sequence[int]] | None = None,
        normalization: dict | None = None,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"variant={variant!r} is unknown; use one of {sorted(VARIANTS)}")
        self._init_network(arguments(locals()), FCN_ENCODER)
        enc = self.encoder
        n_maps, depth = VARIANTS[variant], len(enc.out_channels)
        if depth < n_maps:
            raise ConfigError(
                f"FCN-{variant} fuses the {n_maps} coarsest maps; the encoder has {depth}"
            )
        self.levels = list(range(depth - n_maps, depth))
        self.scores = nn.ModuleList(
            [CONV[ndim](enc.out_channels[i], out_channels, 1) for i in self.levels]
        )
        self.ups = nn.ModuleList()
        rf = enc.receptive_fields[self.levels[-1]]
        for fine, coarse in zip(self.levels[-2::-1], self.levels[:0:-1], strict=True):
            step, growth = _upsampling(enc, up, coarse, fine, out_channels)
            self.ups.append(step)
            rf = add(rf, growth)
        self.final_up, growth = _upsampling(enc, up, self.levels[0], None, out_channels)
        self.receptive_field = add(rf, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        y = self.scores[-1](feats[self.levels[-1]])
        for j, level in enumerate(self.levels[-2::-1]):
            y = _up(self.ups[j], y, feats) + self.scores[len(self.levels) - 2 - j](feats[level])
        return _up(self.final_up, y, feats)


def _upsampling(
    enc: Encoder, up: str, coarse: int, fine: int | None, out_channels: int
) -> tuple[nn.Module, tuple[int, ...]]:
    """The layer taking class scores from encoder map ``coarse`` to map ``fine`` (None: to the
    input resolution) and the receptive-field growth it adds."""
    if up == "max_unpool":
        path = UnpoolPath(enc, coarse, 0 if fine is None else fine, out_channels, enc.ndim)
        return path, path.receptive_growth
    fine_stride = (1,) * enc.ndim if fine is None else enc.strides[fine]
    factor = ratio(enc.strides[coarse], fine_stride)
    upsample = Upsample(up, out_channels, out_channels, factor, enc.ndim)
    return upsample, up_growth(upsample, enc.strides[coarse], fine_stride)


def _up(module: nn.Module, y: torch.Tensor, feats) -> torch.Tensor:
    return module(y, feats) if isinstance(module, UnpoolPath) else module(y)


class UnpoolPath(nn.Module):
    """Class scores at encoder map ``coarse`` unpooled to map ``fine``, one paired pooling at a
    time: map i+1 -> i is projected (1x1) to map i's channel count, the count of the indices its
    pooling kept, unpooled with them and densified by a 3x3 convolution + ReLU; a last 1x1
    returns to ``out_channels`` scores."""

    def __init__(self, encoder, coarse: int, fine: int, out_channels: int, ndim: int) -> None:
        super().__init__()
        self.levels = list(range(coarse - 1, fine - 1, -1))
        self.steps, self.fills = nn.ModuleList(), nn.ModuleList()
        c = out_channels
        grow = (0,) * ndim
        for i in self.levels:
            factor = ratio(encoder.strides[i + 1], encoder.strides[i])
            c_i = encoder.out_channels[i]
            self.steps.append(Upsample("max_unpool", c, c_i, factor, ndim))
            self.fills.append(nn.Sequential(CONV[ndim](c_i, c_i, 3, padding=1), nn.ReLU()))
            grow = add(grow, tuple(2 * s for s in encoder.strides[i]))
            c = c_i
        self.head = CONV[ndim](c, out_channels, 1)
        self.receptive_growth = grow

    def forward(self, y: torch.Tensor, feats) -> torch.Tensor:
        for i, step, fill in zip(self.levels, self.steps, self.fills, strict=True):
            y = fill(step(y, indices=feats.indices[i], output_size=feats[i].shape[2:]))
        return self.head(y)
