"""Metrics of the 2D tasks: mIoU and Dice from a confusion matrix; box IoU and class accuracy
for localization; proposal recall and (mean) average best overlap; COCO mAP for boxes and masks
through torchmetrics (faster-coco-eval backend)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchvision.ops import box_convert, box_iou

from models.errors import InputError, ModelError


def confusion_matrix(pred, target, n_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """``m[t, p]`` = pixels of true class ``t`` predicted as ``p``."""
    pred = np.asarray(pred).ravel().astype(np.int64)
    target = np.asarray(target).ravel().astype(np.int64)
    if pred.shape != target.shape:
        raise InputError(f"prediction has {pred.size} pixels but the target {target.size}")
    keep = (target >= 0) & (target < n_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    pred, target = pred[keep], target[keep]
    if pred.size and (pred.min() < 0 or pred.max() >= n_classes):
        raise InputError(f"predicted classes outside [0, {n_classes})")
    return np.bincount(target * n_classes + pred, minlength=n_classes**2).reshape(n_classes, -1)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """IoU of each class; NaN for a class absent from both prediction and target."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def dice_per_class(conf: np.ndarray) -> np.ndarray:
    tp = np.diag(conf).astype(np.float64)
    denom = conf.sum(0) + conf.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / denom, np.nan)


def segmentation_scores(conf: np.ndarray, class_names: Sequence[str] | None = None) -> dict:
    """mIoU, mean Dice and pixel accuracy (means over classes present), plus per-class IoU."""
    iou, dice = iou_per_class(conf), dice_per_class(conf)
    names = list(class_names) if class_names else [str(i) for i in range(len(iou))]
    return {
        "miou": float(np.nanmean(iou)),
        "dice": float(np.nanmean(dice)),
        "pixel_acc": float(np.diag(conf).sum() / max(conf.sum(), 1)),
        "iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou, strict=True)},
    }


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    return box_convert(torch.as_tensor(boxes, dtype=torch.float32), "cxcywh", "xyxy")


def paired_box_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of ``pred[i]`` with ``target[i]`` (both x1, y1, x2, y2); 0 for empty boxes."""
    pred, target = (
        torch.as_tensor(pred, dtype=torch.float32),
        torch.as_tensor(target, dtype=torch.float32),
    )
    if pred.shape != target.shape:
        raise InputError(f"{pred.shape[0]} predicted boxes for {target.shape[0]} targets")
    lt = torch.maximum(pred[:, :2], target[:, :2])
    rb = torch.minimum(pred[:, 2:], target[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area = lambda b: (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)  # noqa: E731
    union = area(pred) + area(target) - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))


def localization_scores(pred_labels, pred_boxes, labels, boxes) -> dict:
    """Class accuracy and mean box IoU (boxes as cx, cy, w, h); ``iou50`` is the fraction of
    crops with IoU >= 0.5, ``both50`` those also classified right."""
    pred_labels, labels = torch.as_tensor(pred_labels), torch.as_tensor(labels)
    iou = paired_box_iou(cxcywh_to_xyxy(pred_boxes), cxcywh_to_xyxy(boxes))
    right = pred_labels == labels
    return {
        "acc": float(right.float().mean()),
        "iou": float(iou.mean()),
        "iou50": float((iou >= 0.5).float().mean()),
        "both50": float(((iou >= 0.5) & right).float().mean()),
        "n": int(labels.numel()),
    }


def best_overlaps(proposals: torch.Tensor, gt_boxes: torch.Tensor) -> torch.Tensor:
    """For each ground-truth box, its highest IoU with any proposal (0 without proposals)."""
    if gt_boxes.numel() == 0:
        return torch.zeros(0)
    if proposals.numel() == 0:
        return torch.zeros(len(gt_boxes))
    return box_iou(gt_boxes.float(), proposals.float()).max(1).values


def proposal_scores(per_image: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> dict:
    """Selective-search-paper scores over images of (proposals, gt boxes, gt labels): recall at
    IoU 0.5, ABO per class (mean best overlap of its boxes) and MABO (mean of the ABOs)."""
    overlaps, classes, counts = [], [], []
    for proposals, gt, labels in per_image:
        overlaps.append(best_overlaps(proposals, gt))
        classes.append(torch.as_tensor(labels))
        counts.append(len(proposals))
    if not overlaps or sum(len(o) for o in overlaps) == 0:
        raise InputError("proposal scoring needs at least one ground-truth box")
    ov, cl = torch.cat(overlaps), torch.cat(classes)
    abo = {int(c): float(ov[cl == c].mean()) for c in torch.unique(cl)}
    return {
        "recall": float((ov >= 0.5).float().mean()),
        "mabo": float(np.mean(list(abo.values()))),
        "abo": abo,
        "boxes_per_image": float(np.mean(counts)),
        "n_gt": int(ov.numel()),
    }


def coco_map(preds: list[dict], targets: list[dict], masks: bool = False) -> dict:
    """COCO mAP@[.5:.95] and mAP@.5 for boxes (and masks) via torchmetrics with the
    faster-coco-eval backend. ``preds``: boxes, scores, labels[, masks]; ``targets``: boxes,
    labels[, masks]; masks as (n, H, W) bool/uint8 (Mask R-CNN's soft masks are thresholded
    at 0.5). Returns -1 for a metric with no ground truth."""
    try:
        import faster_coco_eval  # noqa: F401  (the backend torchmetrics is told to use)
        from torchmetrics.detection import MeanAveragePrecision
    except ImportError as e:
        raise ModelError(
            f"COCO mAP needs torchmetrics and faster-coco-eval ({e}); install them: "
            "pip install torchmetrics==1.9.0 faster-coco-eval==1.8.0"
        ) from None

    iou_types = ["bbox", "segm"] if masks else ["bbox"]
    metric = MeanAveragePrecision(iou_type=iou_types, backend="faster_coco_eval")
    p_list, t_list = [], []
    for p, t in zip(preds, targets, strict=True):
        p2 = {
            "boxes": p["boxes"].detach().float().cpu(),
            "scores": p["scores"].detach().cpu(),
            "labels": p["labels"].detach().cpu(),
        }
        t2 = {"boxes": t["boxes"].float().cpu(), "labels": t["labels"].cpu()}
        if masks:
            pm = p["masks"].detach().cpu()
            if pm.dim() == 4:
                pm = pm[:, 0]
            p2["masks"] = (pm > 0.5) if pm.is_floating_point() else pm.bool()
            t2["masks"] = t["masks"].cpu().bool()
        p_list.append(p2)
        t_list.append(t2)
    metric.update(p_list, t_list)
    r = metric.compute()
    prefix = {"bbox": "bbox_" if masks else "", "segm": "segm_"}
    out = {}
    for kind in iou_types:
        pre = prefix[kind]
        name = "box" if kind == "bbox" else "mask"
        out[f"{name}_map"] = float(r[f"{pre}map"])
        out[f"{name}_map50"] = float(r[f"{pre}map_50"])
        out[f"{name}_map75"] = float(r[f"{pre}map_75"])
    return out
