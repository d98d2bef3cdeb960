"""Semantic segmentation: the shared U-Net and FCN-32s/16s/8s (models.unet, models.fcn) with one
output channel per class and a per-pixel softmax, any upsampling mode of models.upsample.

``SemanticNet(images)`` returns class logits (N, C, H, W); ``losses(x, y)`` the per-pixel cross
entropy; ``predict(x)`` softmax probabilities for inputs of any size (reflect-padded to the
network's stride, cropped back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.encoders import EncoderConfig, encoder_config
from models.errors import ConfigError, InputError
from models.fcn import FCN
from models.unet import UNet
from models.upsample import UPSAMPLING

ARCHITECTURES = ("unet", "fcn32s", "fcn16s", "fcn8s")
DEFAULT_ENCODERS = {
    "unet": EncoderConfig(widths=(16, 32, 64, 128)),
    "fcn": EncoderConfig(widths=(16, 32, 64, 128, 256, 512)),
}
IGNORE = 255  # target value of pixels left out of the loss and the metrics


def valid_variants() -> list[tuple[str, str]]:
    """Every (architecture, upsampling) pair: 4 x 5."""
    return [(a, u) for a in ARCHITECTURES for u in UPSAMPLING]


class SemanticNet(nn.Module):
    """Per-pixel classifier over ``class_names`` on a U-Net or FCN; ``encoder`` options go over
    the architecture's default encoder (:data:`DEFAULT_ENCODERS`)."""

    task = "semantic"

    def __init__(
        self,
        class_names: Sequence[str],
        arch: str = "unet",
        up: str = "transposed",
        in_channels: int = 1,
        encoder: EncoderConfig | Mapping | None = None,
        normalization: dict | None = None,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ConfigError(f"arch={arch!r} is unknown; use one of {ARCHITECTURES}")
        if up not in UPSAMPLING:
            raise ConfigError(f"up={up!r} is unknown; use one of {UPSAMPLING}")
        n = len(class_names)
        if n < 2:
            raise ConfigError("semantic segmentation needs at least two classes")
        norm_in = normalization or {"mean": 0.5, "std": 0.25}
        enc = encoder_config(encoder, DEFAULT_ENCODERS["unet" if arch == "unet" else "fcn"])
        head = dict(encoder=enc, up=up, output="logits", normalization=norm_in)
        if arch == "unet":
            self.net = UNet(in_channels, n, ndim=2, **head)
        else:
            self.net = FCN(in_channels, n, ndim=2, variant=arch[3:], **head)
        if class_weights is not None and len(class_weights) != n:
            raise ConfigError(f"{len(class_weights)} class weights for {n} classes")
        self.register_buffer(
            "class_weights",
            None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32),
        )
        self.class_names = list(class_names)
        self.in_channels = in_channels
        self.mean, self.std = float(norm_in["mean"]), float(norm_in["std"])
        self.config = {
            "class_names": self.class_names,
            "arch": arch,
            "up": up,
            "in_channels": in_channels,
            "encoder": enc.to_dict(),
            "normalization": dict(norm_in),
            "class_weights": None if class_weights is None else [float(w) for w in class_weights],
        }

    @property
    def size_multiple(self) -> int:
        return int(self.net.encoder.size_multiple[0])

    @property
    def receptive_field(self) -> int:
        return int(self.net.receptive_field[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-pixel cross entropy (pixels labelled :data:`IGNORE` left out)."""
        if y.shape != (x.shape[0], *x.shape[2:]):
            raise InputError(f"targets {tuple(y.shape)} do not match images {tuple(x.shape)}")
        logits = self(x)
        return {
            "loss_ce": F.cross_entropy(logits, y, weight=self.class_weights, ignore_index=IGNORE)
        }

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities (N, C, H, W) for normalised inputs of any size."""
        self.eval()
        if x.dim() == 3:
            x = x[:, None]
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise InputError(
                f"expected images (N, {self.in_channels}, H, W); got {tuple(x.shape)} (a grayscale "
                "model takes one channel: convert RGB images to gray)"
            )
        h, w = x.shape[-2:]
        m = self.size_multiple
        ph, pw = -h % m, -w % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return F.softmax(self(x), 1)[..., :h, :w]

    def normalize(self, images_u8: torch.Tensor) -> torch.Tensor:
        """uint8 pixels to the model's normalised float input."""
        return (images_u8.float() / 255.0 - self.mean) / self.std
