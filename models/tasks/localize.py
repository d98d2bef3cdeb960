"""Classification + localization: one object per image, class scores and one box.

Our encoder (models.encoders) -> its coarsest map average-pooled to a ``grid`` x ``grid``
layout (pooling to 1 x 1 would throw away where the object is) -> a shared fully connected
layer -> two heads: class logits, and the box (cx, cy, w, h) as fractions of the image
(sigmoid). Loss: cross entropy + ``box_weight`` x smooth-L1 (or L2) on the box.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.encoders import EncoderConfig, build_encoder, encoder_config
from models.errors import ConfigError, InputError

LOC_ENCODER = EncoderConfig(widths=(16, 32, 64, 128))


class Localizer(nn.Module):
    task = "localize"

    def __init__(
        self,
        class_names: Sequence[str],
        in_channels: int = 1,
        encoder: EncoderConfig | Mapping | None = None,
        grid: int = 4,
        hidden: int = 256,
        box_loss: str = "smooth_l1",
        box_weight: float = 5.0,
        normalization: dict | None = None,
    ) -> None:
        super().__init__()
        if box_loss not in ("smooth_l1", "l2"):
            raise ConfigError(f"box_loss={box_loss!r}; use 'smooth_l1' or 'l2'")
        enc_cfg = encoder_config(encoder, LOC_ENCODER)
        self.encoder = build_encoder(enc_cfg, in_channels, ndim=2)
        c = self.encoder.out_channels[-1]
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(c * grid * grid, hidden), nn.ReLU(inplace=True)
        )
        self.cls_head = nn.Linear(hidden, len(class_names))
        self.box_head = nn.Linear(hidden, 4)
        norm = normalization or {"mean": 0.5, "std": 0.25}
        self.mean, self.std = float(norm["mean"]), float(norm["std"])
        self.in_channels = in_channels
        self.class_names = list(class_names)
        self.box_loss, self.box_weight = box_loss, box_weight
        self.config = {
            "class_names": self.class_names,
            "in_channels": in_channels,
            "encoder": enc_cfg.to_dict(),
            "grid": grid,
            "hidden": hidden,
            "box_loss": box_loss,
            "box_weight": box_weight,
            "normalization": dict(norm),
        }

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits (N, C), boxes (N, 4) as cx, cy, w, h in [0, 1])."""
        h = self.fc(self.pool(self.encoder(x)[-1]))
        return self.cls_head(h), torch.sigmoid(self.box_head(h))

    def losses(
        self, x: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        if boxes.shape != (x.shape[0], 4) or labels.shape != (x.shape[0],):
            raise InputError(
                f"{x.shape[0]} images need labels (N,) and boxes (N, 4); got {tuple(labels.shape)}, "
                f"{tuple(boxes.shape)}"
            )
        if (boxes[:, 2:] <= 0).any() or (boxes < 0).any() or (boxes > 1).any():
            raise InputError(
                "target boxes must be (cx, cy, w, h) fractions in [0, 1] with w, h > 0"
            )
        logits, pred = self(x)
        fn = F.smooth_l1_loss if self.box_loss == "smooth_l1" else F.mse_loss
        # smooth-L1's quadratic zone is |d| < 1; on [0, 1] fractions scale d so it bends at 0.1
        scale = 10.0 if self.box_loss == "smooth_l1" else 1.0
        box = fn(pred * scale, boxes * scale) / scale
        return {"loss_cls": F.cross_entropy(logits, labels), "loss_box": self.box_weight * box}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(labels, class probabilities, boxes cx, cy, w, h)."""
        self.eval()
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise InputError(
                f"expected crops (N, {self.in_channels}, H, W); got {tuple(x.shape)} (convert RGB "
                "crops to grayscale)"
            )
        m = self.encoder.size_multiple[0]
        if x.shape[-1] % m or x.shape[-2] % m:
            raise InputError(f"crop size {tuple(x.shape[-2:])} must be a multiple of {m}")
        logits, boxes = self(x)
        prob = F.softmax(logits, 1)
        return prob.argmax(1), prob, boxes
