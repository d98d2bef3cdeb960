"""Two-stage detection (Faster R-CNN) and its Mask R-CNN extension: torchvision's
GeneralizedRCNN composed from injected parts, on our encoder + FPN (models.tasks.fpn).

transform (normalise + pad, never resize: EM pixels have a physical size) -> backbone
(encoder + FPN) -> RegionProposalNetwork (AnchorGenerator + RPNHead) -> RoIHeads
(MultiScaleRoIAlign, or RoI max pooling with ``roi_op="pool"``, + TwoMLPHead +
FastRCNNPredictor [+ mask branch]). :class:`RCNN` takes the four parts as objects;
:func:`build_two_stage` makes them from a :class:`TwoStageConfig` (models.tasks.rcnn_parts),
and any part can be swapped for another with the same interface.

Train mode: ``model(images, targets)`` returns the loss dict; eval mode: ``model(images)``
returns one dict per image (boxes x1 y1 x2 y2, scores, labels [, masks]). Class 0 is background.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from models.tasks.detection import check_images, check_targets
from models.tasks.rcnn_parts import (
    TwoStageConfig,
    make_backbone,
    make_roi_heads,
    make_rpn,
    make_transform,
)


class RCNN(GeneralizedRCNN):
    """Faster R-CNN, or Mask R-CNN when the RoI heads have a mask branch; see the module
    docstring. ``config`` names the classes and input channels, and is what a checkpoint stores
    to rebuild the model (with :func:`build_two_stage`)."""

    def __init__(
        self,
        backbone: nn.Module,
        rpn: RegionProposalNetwork,
        roi_heads: RoIHeads,
        transform: GeneralizedRCNNTransform,
        config: TwoStageConfig,
    ) -> None:
        super().__init__(backbone, rpn, roi_heads, transform)
        self.task = "instance" if roi_heads.has_mask() else "detect"
        self.in_channels = config.in_channels
        self.num_classes = config.num_classes
        self.class_names = list(config.class_names)
        self.config = {**config.to_dict(), "masks": roi_heads.has_mask()}

    def forward(self, images, targets=None):
        images = list(images)
        check_images(images, self.in_channels)
        if self.training:
            check_targets(targets, images, self.num_classes, masks=self.roi_heads.has_mask())
        return super().forward(images, targets)

    def losses(self, images, targets) -> dict[str, torch.Tensor]:
        """The training losses (call in train mode)."""
        return self(images, targets)

    @torch.no_grad()
    def predict(self, images) -> list[dict[str, torch.Tensor]]:
        """Detections per image (eval mode is set by the caller or here)."""
        self.eval()
        return self(images)

    @torch.no_grad()
    def propose(self, images, n: int) -> list[torch.Tensor]:
        """The RPN's top-``n`` proposals (x1, y1, x2, y2, best first) per image."""
        self.eval()
        images = list(images)
        check_images(images, self.in_channels)
        batch, _ = self.transform(images)
        feats = self.backbone(batch.tensors)
        saved = dict(self.rpn._post_nms_top_n), dict(self.rpn._pre_nms_top_n)
        self.rpn._post_nms_top_n["testing"] = n
        self.rpn._pre_nms_top_n["testing"] = max(n * 2, saved[1]["testing"])
        try:
            boxes, _ = self.rpn(batch, feats)
        finally:
            self.rpn._post_nms_top_n, self.rpn._pre_nms_top_n = saved
        return [b[:n] for b in boxes]

    def anchor_count(self, image_size: tuple[int, int]) -> tuple[int, list[tuple[int, int]]]:
        """(anchors the generator makes for one padded image, feature-map sizes)."""
        self.eval()
        with torch.no_grad():
            x = [torch.zeros(self.in_channels, *image_size, device=next(self.parameters()).device)]
            batch, _ = self.transform(x)
            feats = list(self.backbone(batch.tensors).values())
            anchors = self.rpn.anchor_generator(batch, feats)
        return len(anchors[0]), [tuple(f.shape[-2:]) for f in feats]


def rcnn_from_config(config: TwoStageConfig) -> RCNN:
    """The detector a config describes, its parts made in a fixed order (same seed, same
    weights)."""
    backbone = make_backbone(config)
    rpn = make_rpn(config, backbone)
    roi_heads = make_roi_heads(config, backbone)
    return RCNN(backbone, rpn, roi_heads, make_transform(config, backbone), config)


def build_two_stage(num_classes: int, **options) -> RCNN:
    """Faster R-CNN on our encoder + FPN (options: the fields of :class:`TwoStageConfig`)."""
    return rcnn_from_config(TwoStageConfig.from_options(num_classes, **options))
