"""Our encoders as torchvision detection backbones: an encoder (models.encoders contract) plus
torchvision's FeaturePyramidNetwork, returning named maps that all have ``out_channels``.

torchvision's detectors only need ``backbone(images) -> OrderedDict[str, Tensor]`` (highest
resolution first) and ``backbone.out_channels``; the FPN gives every level one channel count, so
the RPN and RoI heads are shared across levels.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from models.encoders import Encoder, EncoderConfig
from models.errors import ConfigError

# the default encoder of the detection heads (and the localizer, one stage shallower)
DETECTION_ENCODER = EncoderConfig(widths=(16, 32, 64, 128, 256))


class EncoderFPN(nn.Module):
    """FPN over the encoder maps ``levels`` (indices into the encoder's feature list); with
    ``extra_pool`` one more map ("pool", stride x2 of the last) as in Faster R-CNN's FPN."""

    def __init__(
        self,
        encoder: Encoder,
        levels: Sequence[int] = (2, 3, 4),
        out_channels: int = 64,
        extra_pool: bool = True,
    ) -> None:
        super().__init__()
        if encoder.ndim != 2:
            raise ConfigError("detection backbones are 2D; build the encoder with ndim=2")
        n = len(encoder.out_channels)
        levels = [int(i) if i >= 0 else n + int(i) for i in levels]
        if not levels or any(not 0 <= i < n for i in levels) or levels != sorted(set(levels)):
            raise ConfigError(f"FPN levels {levels} must be increasing indices below {n}")
        self.encoder = encoder
        self.levels = levels
        self.out_channels = out_channels
        self.fpn = FeaturePyramidNetwork(
            [encoder.out_channels[i] for i in levels],
            out_channels,
            extra_blocks=LastLevelMaxPool() if extra_pool else None,
        )
        self.strides = [encoder.strides[i][0] for i in levels]
        if extra_pool:
            self.strides.append(self.strides[-1] * 2)
        self.names = [str(i) for i in range(len(levels))] + (["pool"] if extra_pool else [])

    @property
    def size_divisible(self) -> int:
        """Inputs are padded to a multiple of this (the coarsest map's stride)."""
        return max(self.strides[-1], self.encoder.size_multiple[0])

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = self.encoder(x)
        picked = OrderedDict((str(j), feats[i]) for j, i in enumerate(self.levels))
        return self.fpn(picked)
