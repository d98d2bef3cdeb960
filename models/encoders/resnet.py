"""A 2D torchvision ResNet (random initialisation; no weights are downloaded) as an encoder."""

from __future__ import annotations

import torch
from torch import nn

from models.encoders.contract import Encoder, FeatureList, Shape
from models.errors import ConfigError

RESNETS = ("resnet18", "resnet34", "resnet50")


class ResNetEncoder(Encoder):
    """Maps at strides 2, 4, 8, 16 and 32, and a first convolution for ``in_channels``."""

    def __init__(self, name: str = "resnet18", in_channels: int = 1) -> None:
        super().__init__()
        import torchvision

        if name not in RESNETS:
            raise ConfigError(f"encoder {name!r} is unknown; use one of {list(RESNETS)}")
        net = getattr(torchvision.models, name)(weights=None)
        net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.ndim, self.in_channels = 2, in_channels
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.pool = net.maxpool
        self.layers = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        expansion = 4 if name == "resnet50" else 1
        self.out_channels = [64] + [c * expansion for c in (64, 128, 256, 512)]
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
