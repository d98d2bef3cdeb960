"""What every detector head shares: :class:`DetectorConfig` (classes, input channels, encoder,
FPN width, input normalisation, post-processing limits) and the checks of images and targets.

Images are float (C, H, W) tensors in [0, 1]; targets hold ``boxes`` (n, 4) as x1, y1, x2, y2 in
pixel-edge coordinates, ``labels`` (n,) in 1..num_classes (0 is background) and, for Mask R-CNN,
``masks`` (n, H, W).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch

from models.encoders import EncoderConfig, encoder_config
from models.errors import ConfigError, InputError
from models.records import jsonable
from models.tasks.fpn import DETECTION_ENCODER


@dataclass
class DetectorConfig:
    """The options of every detector; :class:`TwoStageConfig` and :class:`GridConfig` add their
    own. Built from JSON (a checkpoint's config) or keywords; ``to_dict`` is JSON-able."""

    num_classes: int
    class_names: Sequence[str] | None = None
    in_channels: int = 1
    encoder: EncoderConfig | Mapping | None = None
    fpn_channels: int = 64
    normalization: dict | None = None
    score_thresh: float = 0.05
    detections_per_img: int = 100

    def __post_init__(self) -> None:
        n = self.num_classes
        if n < 1:
            raise ConfigError(f"num_classes={n}: need at least one object class")
        names = self.class_names
        self.class_names = list(names) if names else [str(i) for i in range(1, n + 1)]
        if len(self.class_names) != n:
            raise ConfigError(f"{len(self.class_names)} class names for {n} classes")
        self.encoder = encoder_config(self.encoder, DETECTION_ENCODER)
        self.normalization = dict(self.normalization or {"mean": 0.5, "std": 0.25})

    def to_dict(self) -> dict:
        return jsonable({**asdict(self), "encoder": self.encoder.to_dict()})

    @classmethod
    def from_options(cls, num_classes: int, **options):
        """The config of keyword options; an unknown option is a ConfigError naming it."""
        try:
            return cls(num_classes, **options)
        except TypeError as e:
            raise ConfigError(f"{cls.__name__}: {e}") from None


def check_images(images: Sequence[torch.Tensor], in_channels: int) -> None:
    """Refuse anything but a list of float (C, H, W) tensors with the model's channel count."""
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        images = list(images)
    for i, img in enumerate(images):
        if not isinstance(img, torch.Tensor) or img.dim() != 3:
            shape = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
            raise InputError(f"image {i}: expected a (channels, height, width) tensor, got {shape}")
        if img.shape[0] != in_channels:
            kind = {1: "grayscale", 3: "RGB"}.get(img.shape[0], f"{img.shape[0]}-channel")
            want = {1: "grayscale", 3: "RGB"}.get(in_channels, f"{in_channels}-channel")
            raise InputError(
                f"image {i} is {kind} ({img.shape[0]} channels) but the model takes {want} "
                f"({in_channels}); convert the image (e.g. rgb2gray) or build the model with "
                f"in_channels={img.shape[0]}"
            )
        if not img.is_floating_point():
            raise InputError(f"image {i} has dtype {img.dtype}; pass float pixels in [0, 1]")


def check_targets(
    targets: Sequence[dict], images: Sequence[torch.Tensor], num_classes: int, masks=False
):
    """Clear errors for degenerate or non-finite boxes, bad labels and mismatched masks."""
    if targets is None or len(targets) != len(images):
        n = None if targets is None else len(targets)
        raise InputError(
            f"training needs one target dict per image: {len(images)} images, {n} targets"
        )
    for i, (t, img) in enumerate(zip(targets, images, strict=True)):
        boxes, labels = t.get("boxes"), t.get("labels")
        if boxes is None or labels is None:
            raise InputError(f"target {i} needs 'boxes' (n, 4) and 'labels' (n,)")
        if boxes.dim() != 2 or boxes.shape[-1] != 4 or len(labels) != len(boxes):
            raise InputError(
                f"target {i}: boxes must be (n, 4) with n labels; got boxes {tuple(boxes.shape)}, "
                f"labels {tuple(labels.shape)}"
            )
        if len(boxes):
            if not torch.isfinite(boxes).all():
                raise InputError(f"target {i} has a non-finite box coordinate")
            bad = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
            if bad.any():
                j = int(bad.nonzero()[0])
                raise InputError(
                    f"target {i}, box {j} {boxes[j].tolist()} is degenerate (x2 <= x1 or y2 <= y1); "
                    "boxes are (x1, y1, x2, y2) with pixel-edge coordinates: drop it or use x2 = "
                    "last column + 1"
                )
            if labels.min() < 1 or labels.max() > num_classes:
                raise InputError(
                    f"target {i}: labels must be 1..{num_classes} (0 is background); got "
                    f"{labels.unique().tolist()}"
                )
        if masks:
            m = t.get("masks")
            if m is None or tuple(m.shape) != (len(boxes), *img.shape[-2:]):
                got = None if m is None else tuple(m.shape)
                raise InputError(
                    f"target {i}: masks must be (n, H, W) = {(len(boxes), *img.shape[-2:])}, got {got}"
                )
