"""The naive baseline of semantic segmentation: a patch classifier run at every pixel.

:class:`PatchClassifier` labels the centre pixel of a ``PATCH`` x ``PATCH`` window (three
valid 3x3 convolutions with 2x2 max-pooling between them, then two fully connected layers).
``sliding_window`` crops one patch per pixel and classifies each crop on its own: the cost the
fully convolutional design removes. ``dense`` computes exactly the same outputs in one pass by
turning the network fully convolutional (pooling with stride 1 and the following layers dilated
by the accumulated stride: the "shift-and-stitch"/dilation trick), so the two differ only in
speed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import ConfigError, InputError

PATCH = 34  # 34 -conv-> 32 -pool-> 16 -conv-> 14 -pool-> 7 -conv-> 5: the FC sees 5 x 5
BEFORE = PATCH // 2 - 1  # pixels of context above/left of the labelled pixel (16)
AFTER = PATCH - 1 - BEFORE  # below/right (17)


class PatchClassifier(nn.Module):
    task = "patch"

    def __init__(
        self,
        class_names,
        in_channels: int = 1,
        widths=(16, 32, 64),
        hidden: int = 128,
        normalization: dict | None = None,
    ) -> None:
        super().__init__()
        if len(widths) != 3:
            raise ConfigError("PatchClassifier has exactly three convolutions: give three widths")
        c1, c2, c3 = widths
        self.conv1 = nn.Conv2d(in_channels, c1, 3)
        self.conv2 = nn.Conv2d(c1, c2, 3)
        self.conv3 = nn.Conv2d(c2, c3, 3)
        self.fc1 = nn.Linear(c3 * 25, hidden)
        self.fc2 = nn.Linear(hidden, len(class_names))
        norm = normalization or {"mean": 0.5, "std": 0.25}
        self.mean, self.std = float(norm["mean"]), float(norm["std"])
        self.in_channels = in_channels
        self.class_names = list(class_names)
        self.config = {
            "class_names": self.class_names,
            "in_channels": in_channels,
            "widths": list(widths),
            "hidden": hidden,
            "normalization": dict(norm),
        }

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Class logits (N, C) of the centre pixels of (N, in_channels, PATCH, PATCH) patches."""
        if patches.dim() != 4 or tuple(patches.shape[1:]) != (self.in_channels, PATCH, PATCH):
            raise InputError(
                f"patches must be (N, {self.in_channels}, {PATCH}, {PATCH}); got {tuple(patches.shape)}"
            )
        x = F.max_pool2d(F.relu(self.conv1(patches)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.conv3(x))
        return self.fc2(F.relu(self.fc1(x.flatten(1))))

    def losses(self, patches: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss_ce": F.cross_entropy(self(patches), labels)}

    @staticmethod
    def pad(image: torch.Tensor) -> torch.Tensor:
        """Reflect-pad (N, C, H, W) so every pixel has a full patch around it."""
        return F.pad(image, (BEFORE, AFTER, BEFORE, AFTER), mode="reflect")

    @torch.no_grad()
    def dense(self, image: torch.Tensor) -> torch.Tensor:
        """Logits (N, C, H, W) of every pixel in one fully convolutional pass."""
        self.eval()
        _check_image(image, self.in_channels)
        x = self.pad(image)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2, stride=1)
        x = F.max_pool2d(
            F.relu(F.conv2d(x, self.conv2.weight, self.conv2.bias, dilation=2)), 2, 1, dilation=2
        )
        x = F.relu(F.conv2d(x, self.conv3.weight, self.conv3.bias, dilation=4))
        c3 = self.conv3.out_channels
        w1 = self.fc1.weight.view(-1, c3, 5, 5)
        x = F.relu(F.conv2d(x, w1, self.fc1.bias, dilation=4))
        return F.conv2d(x, self.fc2.weight[:, :, None, None], self.fc2.bias)

    @torch.no_grad()
    def sliding_window(self, image: torch.Tensor, batch: int = 1024) -> torch.Tensor:
        """Logits (N, C, H, W): one patch cropped and classified per pixel, ``batch`` at a time."""
        self.eval()
        _check_image(image, self.in_channels)
        n, c, h, w = image.shape
        windows = self.pad(image).unfold(2, PATCH, 1).unfold(3, PATCH, 1)  # a view: (n,c,h,w,P,P)
        out = image.new_empty(n, len(self.class_names), h * w)
        for i in range(n):
            for start in range(0, h * w, batch):
                idx = torch.arange(start, min(start + batch, h * w), device=image.device)
                patches = windows[i, :, idx // w, idx % w].transpose(0, 1)  # crops: (B, c, P, P)
                out[i, :, idx] = self(patches.contiguous()).T
        return out.view(n, -1, h, w)


def _check_image(image: torch.Tensor, in_channels: int) -> None:
    if image.dim() != 4 or image.shape[1] != in_channels:
        raise InputError(f"expected images (N, {in_channels}, H, W); got {tuple(image.shape)}")
    if min(image.shape[-2:]) <= AFTER:
        raise InputError(f"images must be larger than {AFTER} pixels per side for reflect padding")
