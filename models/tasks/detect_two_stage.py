"""Two-stage detection (Faster R-CNN) and its Mask R-CNN extension, assembled from torchvision's
GeneralizedRCNN pieces on our encoder + FPN (models.tasks.fpn).

transform (normalise + pad, never resize: EM pixels have a physical size) -> backbone
(encoder + FPN) -> RegionProposalNetwork (AnchorGenerator + RPNHead) -> RoIHeads
(MultiScaleRoIAlign, or RoI max pooling with ``roi_op="pool"``, + TwoMLPHead +
FastRCNNPredictor [+ mask branch]).

Train mode: ``model(images, targets)`` returns the loss dict; eval mode: ``model(images)``
returns one dict per image (boxes x1 y1 x2 y2, scores, labels [, masks]). Class 0 is background.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign

from models.errors import ConfigError, InputError
from models.tasks.fpn import DEFAULT_ENCODER, EncoderFPN, make_encoder
from models.tasks.roi_pool import MultiScaleRoIPool

DEFAULT_ANCHORS = [[8, 12], [16, 24], [32, 48], [64, 128]]


class NoResizeTransform(GeneralizedRCNNTransform):
    """GeneralizedRCNNTransform that normalises and pads to ``size_divisible`` but never
    rescales: a detector trained on 4 nm pixels must see 4 nm pixels at inference too."""

    def resize(self, image, target=None):
        return image, target


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


class RCNN(GeneralizedRCNN):
    """Faster R-CNN (``masks=False``) or Mask R-CNN on an encoder + FPN; see module docstring."""

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        in_channels: int = 1,
        encoder: dict | None = None,
        fpn_levels: Sequence[int] = (2, 3, 4),
        fpn_channels: int = 64,
        anchor_sizes: Sequence[Sequence[int]] = tuple(map(tuple, DEFAULT_ANCHORS)),
        aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
        masks: bool = False,
        normalization: dict | None = None,
        rpn_pre_nms: Sequence[int] = (1000, 600),
        rpn_post_nms: Sequence[int] = (500, 300),
        rpn_batch: int = 256,
        roi_batch: int = 128,
        representation: int = 256,
        score_thresh: float = 0.05,
        detections_per_img: int = 100,
        roi_canonical_scale: int = 64,
        roi_op: str = "align",
    ) -> None:
        if num_classes < 1:
            raise ConfigError(f"num_classes={num_classes}: need at least one object class")
        norm = normalization or {"mean": 0.5, "std": 0.25}
        enc = make_encoder(in_channels, **(encoder or {}))
        backbone = EncoderFPN(enc, fpn_levels, fpn_channels)
        n_maps = len(backbone.names)
        if len(anchor_sizes) != n_maps:
            raise ConfigError(
                f"anchor_sizes has {len(anchor_sizes)} entries but the backbone returns {n_maps} "
                f"feature maps {backbone.names} (strides {backbone.strides}); give one tuple of "
                "sizes per map"
            )
        if len({len(s) for s in anchor_sizes}) != 1:
            raise ConfigError("every feature map needs the same number of anchor sizes")
        sizes = tuple(tuple(int(v) for v in s) for s in anchor_sizes)
        anchors = AnchorGenerator(sizes, (tuple(float(a) for a in aspect_ratios),) * n_maps)
        rpn = RegionProposalNetwork(
            anchors,
            RPNHead(fpn_channels, anchors.num_anchors_per_location()[0]),
            fg_iou_thresh=0.7,
            bg_iou_thresh=0.3,
            batch_size_per_image=rpn_batch,
            positive_fraction=0.5,
            pre_nms_top_n={"training": rpn_pre_nms[0], "testing": rpn_pre_nms[1]},
            post_nms_top_n={"training": rpn_post_nms[0], "testing": rpn_post_nms[1]},
            nms_thresh=0.7,
        )
        roi_names = backbone.names[: len(fpn_levels)]
        if roi_op not in ("align", "pool"):
            raise ConfigError(f"roi_op={roi_op!r}; use 'align' (RoIAlign) or 'pool' (RoI pooling)")

        def pooler(size: int):
            if roi_op == "pool":
                return MultiScaleRoIPool(roi_names, size, canonical_scale=roi_canonical_scale)
            return MultiScaleRoIAlign(roi_names, size, 2, canonical_scale=roi_canonical_scale)

        box_pool = pooler(7)
        heads = RoIHeads(
            box_pool,
            TwoMLPHead(fpn_channels * 49, representation),
            FastRCNNPredictor(representation, num_classes + 1),
            fg_iou_thresh=0.5,
            bg_iou_thresh=0.5,
            batch_size_per_image=roi_batch,
            positive_fraction=0.25,
            bbox_reg_weights=None,
            score_thresh=score_thresh,
            nms_thresh=0.5,
            detections_per_img=detections_per_img,
        )
        if masks:
            heads.mask_roi_pool = pooler(14)
            heads.mask_head = MaskRCNNHeads(fpn_channels, (64, 64, 64, 64), 1)
            heads.mask_predictor = MaskRCNNPredictor(64, 64, num_classes + 1)
        transform = NoResizeTransform(
            min_size=1,
            max_size=1 << 16,
            image_mean=[norm["mean"]] * in_channels,
            image_std=[norm["std"]] * in_channels,
            size_divisible=backbone.size_divisible,
        )
        super().__init__(backbone, rpn, heads, transform)
        self.task = "instance" if masks else "detect"
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.class_names = (
            list(class_names) if class_names else [str(i) for i in range(1, num_classes + 1)]
        )
        if len(self.class_names) != num_classes:
            raise ConfigError(f"{len(self.class_names)} class names for {num_classes} classes")
        self.config = {
            "num_classes": num_classes,
            "class_names": self.class_names,
            "in_channels": in_channels,
            "encoder": {**DEFAULT_ENCODER, **(encoder or {})},
            "fpn_levels": list(fpn_levels),
            "fpn_channels": fpn_channels,
            "anchor_sizes": [list(s) for s in sizes],
            "aspect_ratios": list(aspect_ratios),
            "masks": masks,
            "normalization": dict(norm),
            "rpn_pre_nms": list(rpn_pre_nms),
            "rpn_post_nms": list(rpn_post_nms),
            "rpn_batch": rpn_batch,
            "roi_batch": roi_batch,
            "representation": representation,
            "score_thresh": score_thresh,
            "detections_per_img": detections_per_img,
            "roi_canonical_scale": roi_canonical_scale,
            "roi_op": roi_op,
        }

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


def build_detector(num_classes: int, **kwargs) -> RCNN:
    """Faster R-CNN on our encoder + FPN (see :class:`RCNN` for the options)."""
    return RCNN(num_classes, masks=False, **kwargs)
