"""Single-shot grid detector (YOLO/SSD style) on our encoder + FPN, built with torchvision.ops.

The image is cut into cells of ``stride`` pixels (the FPN map at that stride). Each cell
predicts ``B`` boxes, one per anchor shape, as (dx, dy, dw, dh, confidence), plus class scores
shared by the cell (YOLO v1):

    cx = (col + sigmoid(dx)) * stride   w = anchor_w * exp(dw)   (likewise y, h)

A ground-truth box is assigned to the cell holding its centre and to the anchor whose shape
overlaps it best. Losses: focal loss (torchvision.ops.sigmoid_focal_loss) on the confidence
of every non-ignored slot (a slot whose predicted box already overlaps a ground truth by more
than ``ignore_iou`` is not pushed to 0, as in YOLO v3), BCE on the centre offsets, smooth-L1 on
the log size ratios, cross entropy on the class of occupied cells. Inference: score =
confidence x class probability, then ``batched_nms`` per class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import (
    batched_nms,
    box_iou,
    clip_boxes_to_image,
    remove_small_boxes,
    sigmoid_focal_loss,
)

from models.encoders import build_encoder
from models.errors import ConfigError
from models.tasks.detection import DetectorConfig, check_images, check_targets
from models.tasks.fpn import EncoderFPN

DEFAULT_GRID_ANCHORS = ((12, 12), (24, 24), (48, 48))


def fit_anchors(wh: np.ndarray, k: int = 3, iterations: int = 30) -> list[list[int]]:
    """k anchor shapes from training box sizes (w, h) by k-means with 1 - IoU as the distance
    (YOLO v2), sorted by area."""
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    if len(wh) < k:
        raise ConfigError(
            f"{len(wh)} boxes cannot fit {k} anchors; give more boxes or fewer anchors"
        )
    by_area = wh[np.argsort(wh.prod(1), kind="stable")]
    centers = by_area[((np.arange(k) + 0.5) / k * len(wh)).astype(int)]  # area quantiles
    for _ in range(iterations):
        inter = np.minimum(wh[:, None, 0], centers[None, :, 0]) * np.minimum(
            wh[:, None, 1], centers[None, :, 1]
        )
        union = wh.prod(1)[:, None] + centers.prod(1)[None] - inter
        assign = np.argmax(inter / union, 1)
        new = np.array(
            [np.median(wh[assign == j], 0) if (assign == j).any() else centers[j] for j in range(k)]
        )
        if np.allclose(new, centers):
            break
        centers = new
    centers = centers[np.argsort(centers.prod(1))]
    return [[max(1, int(round(w))), max(1, int(round(h)))] for w, h in centers]


@dataclass
class GridConfig(DetectorConfig):
    """Grid detector options: the ``stride`` of the cell grid (an encoder stride; the FPN runs
    from that map down), one anchor shape (w, h) per box slot, the NMS IoU and the IoU above
    which a slot's box is left out of the confidence loss."""

    stride: int = 8
    anchors: tuple[tuple[int, int], ...] = DEFAULT_GRID_ANCHORS
    nms_thresh: float = 0.5
    ignore_iou: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        self.anchors = tuple(tuple(int(v) for v in a) for a in self.anchors)


class GridDetector(nn.Module):
    """See the module docstring. ``model(images, targets)`` in train mode returns the loss dict,
    ``model(images)`` in eval mode a dict per image (boxes, scores, labels; 0 = background).
    ``backbone`` returns named maps, the first (``"0"``) at ``config.stride``."""

    task = "grid_detect"

    def __init__(self, backbone: nn.Module, config: GridConfig) -> None:
        super().__init__()
        if backbone.strides[0] != config.stride:
            raise ConfigError(
                f"the backbone's first map is at stride {backbone.strides[0]}, the grid at "
                f"{config.stride}; give a backbone whose first map has the grid's stride"
            )
        self.backbone = backbone
        self.stride = config.stride
        anchors = torch.tensor(config.anchors, dtype=torch.float32).reshape(-1, 2)
        self.register_buffer("anchors", anchors)
        self.B, self.C = len(self.anchors), config.num_classes
        c = backbone.out_channels
        self.head = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, self.B * 5 + self.C, 1),
        )
        with torch.no_grad():  # confidence starts at 0.01 (RetinaNet prior): stable focal loss
            bias = self.head[-1].bias.view(-1)
            bias[4 : self.B * 5 : 5] = -math.log(99.0)
        self.in_channels, self.num_classes = config.in_channels, config.num_classes
        norm = config.normalization
        self.mean, self.std = float(norm["mean"]), float(norm["std"])
        self.score_thresh, self.nms_thresh = config.score_thresh, config.nms_thresh
        self.detections_per_img, self.ignore_iou = config.detections_per_img, config.ignore_iou
        self.class_names = list(config.class_names)
        self.config = config.to_dict()

    # -- shared pieces -------------------------------------------------------------------
    def _batch(self, images: list[torch.Tensor]) -> torch.Tensor:
        """Normalise and zero-pad (after normalising: pads read as mean intensity) to a common
        size that is a multiple of the backbone's stride, so any image size works."""
        m = self.backbone.size_divisible
        h = max(-(-img.shape[-2] // m) * m for img in images)
        w = max(-(-img.shape[-1] // m) * m for img in images)
        out = images[0].new_zeros(len(images), self.in_channels, h, w)
        for i, img in enumerate(images):
            out[i, :, : img.shape[-2], : img.shape[-1]] = (img - self.mean) / self.std
        return out

    def _raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Box parameters (N, B, 5, gh, gw) and class logits (N, C, gh, gw)."""
        y = self.head(self.backbone(x)["0"])
        n, _, gh, gw = y.shape
        return y[:, : self.B * 5].reshape(n, self.B, 5, gh, gw), y[:, self.B * 5 :]

    def _decode(self, box: torch.Tensor) -> torch.Tensor:
        """Boxes x1, y1, x2, y2 of every slot: (N, B, gh, gw, 4)."""
        n, b, _, gh, gw = box.shape
        gy, gx = torch.meshgrid(
            torch.arange(gh, device=box.device), torch.arange(gw, device=box.device), indexing="ij"
        )
        cx = (gx + torch.sigmoid(box[:, :, 0])) * self.stride
        cy = (gy + torch.sigmoid(box[:, :, 1])) * self.stride
        aw = self.anchors[:, 0].view(1, b, 1, 1)
        ah = self.anchors[:, 1].view(1, b, 1, 1)
        w = aw * torch.exp(box[:, :, 2].clamp(max=6.0))
        h = ah * torch.exp(box[:, :, 3].clamp(max=6.0))
        return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)

    # -- training ------------------------------------------------------------------------
    def _assign(self, boxes: torch.Tensor, labels: torch.Tensor, gh: int, gw: int):
        """Per slot: positive flag, (tx, ty, tw, th) targets; per cell: class target (-1 none)."""
        dev = boxes.device
        pos = torch.zeros(self.B, gh, gw, dtype=torch.bool, device=dev)
        reg = torch.zeros(self.B, gh, gw, 4, device=dev)
        cls = torch.full((gh, gw), -1, dtype=torch.long, device=dev)
        if len(boxes) == 0:
            return pos, reg, cls
        wh = boxes[:, 2:] - boxes[:, :2]
        c = (boxes[:, :2] + boxes[:, 2:]) / 2
        inter = torch.minimum(wh[:, None], self.anchors[None]).prod(-1)
        shape_iou = inter / (wh.prod(-1)[:, None] + self.anchors.prod(-1)[None] - inter)
        best = shape_iou.argmax(1)
        col = (c[:, 0] / self.stride).floor().long().clamp(0, gw - 1)
        row = (c[:, 1] / self.stride).floor().long().clamp(0, gh - 1)
        for j in torch.argsort(wh.prod(-1), descending=True).tolist():  # small boxes win ties
            b, r, q = int(best[j]), int(row[j]), int(col[j])
            pos[b, r, q] = True
            reg[b, r, q, 0] = (c[j, 0] / self.stride - q).clamp(1e-4, 1 - 1e-4)
            reg[b, r, q, 1] = (c[j, 1] / self.stride - r).clamp(1e-4, 1 - 1e-4)
            reg[b, r, q, 2:] = torch.log(wh[j] / self.anchors[b])
            cls[r, q] = int(labels[j]) - 1
        return pos, reg, cls

    def losses(self, images, targets) -> dict[str, torch.Tensor]:
        images = list(images)
        check_images(images, self.in_channels)
        check_targets(targets, images, self.num_classes)
        box, cls_logits = self._raw(self._batch(images))
        n, _, _, gh, gw = box.shape
        decoded = self._decode(box.detach())
        conf = box[:, :, 4]
        pos_l, reg_l, cls_l, ignore_l = [], [], [], []
        for i, t in enumerate(targets):
            boxes, labels = t["boxes"].to(box.device).float(), t["labels"].to(box.device)
            pos, reg, cls = self._assign(boxes, labels, gh, gw)
            ignore = torch.zeros_like(pos)
            if len(boxes):
                best = box_iou(decoded[i].reshape(-1, 4), boxes).max(1).values
                ignore = (best.reshape(pos.shape) > self.ignore_iou) & ~pos
            pos_l.append(pos), reg_l.append(reg), cls_l.append(cls), ignore_l.append(ignore)
        pos, reg = torch.stack(pos_l), torch.stack(reg_l)
        cls_t, ignore = torch.stack(cls_l), torch.stack(ignore_l)
        n_pos = max(1, int(pos.sum()))
        keep = ~ignore
        loss_conf = sigmoid_focal_loss(conf[keep], pos[keep].float(), reduction="sum") / n_pos
        zero = box.sum() * 0.0
        if pos.any():
            pred = box.permute(0, 1, 3, 4, 2)[pos]  # (P, 5)
            loss_xy = F.binary_cross_entropy_with_logits(pred[:, :2], reg[pos][:, :2])
            loss_wh = F.smooth_l1_loss(pred[:, 2:4], reg[pos][:, 2:])
        else:
            loss_xy = loss_wh = zero
        occupied = cls_t >= 0
        if occupied.any():
            logits = cls_logits.permute(0, 2, 3, 1)[occupied]
            loss_cls = F.cross_entropy(logits, cls_t[occupied])
        else:
            loss_cls = cls_logits.sum() * 0.0
        return {
            "loss_conf": loss_conf,
            "loss_xy": loss_xy,
            "loss_wh": loss_wh,
            "loss_cls": loss_cls,
        }

    # -- inference -----------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, images) -> list[dict[str, torch.Tensor]]:
        self.eval()
        images = list(images)
        check_images(images, self.in_channels)
        box, cls_logits = self._raw(self._batch(images))
        decoded = self._decode(box)  # (N, B, gh, gw, 4)
        conf = torch.sigmoid(box[:, :, 4])  # (N, B, gh, gw)
        prob, label = F.softmax(cls_logits, 1).max(1)  # (N, gh, gw)
        out = []
        for i, img in enumerate(images):
            scores = (conf[i] * prob[i][None]).reshape(-1)
            labels = label[i][None].expand_as(conf[i]).reshape(-1) + 1
            boxes = clip_boxes_to_image(decoded[i].reshape(-1, 4), tuple(img.shape[-2:]))
            keep = (scores > self.score_thresh).nonzero().flatten()
            keep = keep[remove_small_boxes(boxes[keep], 1.0)]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
            out.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return out

    def forward(self, images, targets=None):
        if self.training:
            return self.losses(images, targets)
        return self.predict(images)

    def cell_count(self, image_size: tuple[int, int]) -> tuple[int, tuple[int, int]]:
        """(box slots B x gh x gw, grid shape) for one image of ``image_size``."""
        was = self.training
        self.eval()
        with torch.no_grad():
            box, _ = self._raw(self._batch([self.anchors.new_zeros(self.in_channels, *image_size)]))
        self.train(was)
        return box.shape[1] * box.shape[3] * box.shape[4], tuple(box.shape[3:])


def make_grid_backbone(config: GridConfig) -> EncoderFPN:
    """The config's encoder with an FPN from the map at ``config.stride`` to the coarsest."""
    encoder = build_encoder(config.encoder, config.in_channels, ndim=2)
    strides = [s[0] for s in encoder.strides]
    if config.stride not in strides:
        raise ConfigError(f"stride {config.stride} is not an encoder stride {strides}")
    levels = list(range(strides.index(config.stride), len(strides)))
    return EncoderFPN(encoder, levels, config.fpn_channels, extra_pool=False)


def build_grid_detector(num_classes: int, **options) -> GridDetector:
    """The grid detector on our encoder + FPN (options: the fields of :class:`GridConfig`)."""
    config = GridConfig.from_options(num_classes, **options)
    return GridDetector(make_grid_backbone(config), config)
