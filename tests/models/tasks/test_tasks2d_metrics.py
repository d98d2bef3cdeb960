"""2D task metrics against hand-computed toy cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import InputError
from models.train2d.metrics import (
    coco_map,
    confusion_matrix,
    localization_scores,
    paired_box_iou,
    proposal_scores,
    segmentation_scores,
)


def needs_coco() -> None:
    """Skip (with the fix) where the COCO evaluation packages are not installed."""
    for name in ("torchmetrics", "faster_coco_eval"):
        pytest.importorskip(name, reason="COCO mAP needs torchmetrics + faster-coco-eval")


def test_miou_and_dice_by_hand():
    target = np.array([[0, 0, 1], [1, 1, 2]])
    pred = np.array([[0, 1, 1], [1, 2, 2]])
    conf = confusion_matrix(pred, target, 3)
    assert conf.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    s = segmentation_scores(conf, ["a", "b", "c"])
    # IoU: a 1/2, b 2/4, c 1/2 ; Dice: a 2/3, b 4/6, c 2/3
    assert s["iou"] == {"a": 0.5, "b": 0.5, "c": 0.5}
    assert s["miou"] == pytest.approx(0.5)
    assert s["dice"] == pytest.approx(2 / 3)
    assert s["pixel_acc"] == pytest.approx(4 / 6)


def test_absent_class_is_left_out_of_the_mean():
    conf = confusion_matrix(np.zeros(4, int), np.zeros(4, int), 2)
    s = segmentation_scores(conf)
    assert s["miou"] == 1.0 and s["iou"]["1"] is None


def test_confusion_matrix_refuses_bad_predictions():
    with pytest.raises(InputError):
        confusion_matrix(np.array([0, 5]), np.array([0, 1]), 2)
    with pytest.raises(InputError):
        confusion_matrix(np.array([0]), np.array([0, 1]), 2)


def test_box_iou_and_localization_by_hand():
    a = torch.tensor([[0.0, 0, 2, 2], [0, 0, 1, 1], [0, 0, 1, 1]])
    b = torch.tensor([[1.0, 1, 3, 3], [0, 0, 1, 1], [2, 2, 3, 3]])
    assert paired_box_iou(a, b).tolist() == pytest.approx([1 / 7, 1.0, 0.0])
    # (cx, cy, w, h): the first pair overlaps half (IoU 1/3), the second is exact
    s = localization_scores(
        torch.tensor([0, 1]),
        torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.2, 0.2]]),
        torch.tensor([0, 0]),
        torch.tensor([[0.6, 0.5, 0.2, 0.2], [0.3, 0.3, 0.2, 0.2]]),
    )
    assert s["acc"] == 0.5
    assert s["iou"] == pytest.approx((1 / 3 + 1) / 2)
    assert s["iou50"] == 0.5 and s["both50"] == 0.0


def test_proposal_recall_abo_mabo_by_hand():
    gt = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]])
    labels = torch.tensor([1, 1, 2])
    props = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 35], [100, 100, 110, 110]])
    s = proposal_scores([(props, gt, labels)])
    # best overlaps: 1, 100/150, 0 -> class 1 ABO 5/6, class 2 ABO 0
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["abo"] == {1: pytest.approx(5 / 6), 2: 0.0}
    assert s["mabo"] == pytest.approx(5 / 12)
    empty = proposal_scores([(torch.zeros(0, 4), gt, labels)])
    assert empty["recall"] == 0.0 and empty["mabo"] == 0.0
    with pytest.raises(InputError):
        proposal_scores([(props, torch.zeros(0, 4), torch.zeros(0))])


def _det(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32),
        "scores": torch.tensor(scores),
        "labels": torch.tensor(labels),
    }


def test_coco_map_hand_computed():
    needs_coco()
    target = {"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([1])}
    # [0, 0, 10, 6.2] overlaps the target by IoU 62/100 = 0.62
    tp = _det([[0.0, 0, 10, 6.2]], [0.8], [1])
    r = coco_map([tp], [target])
    assert r["box_map50"] == pytest.approx(1.0)
    assert r["box_map"] == pytest.approx(0.3, abs=1e-3)  # matched at 0.50, 0.55, 0.60 only
    # a false positive ranked first halves the precision at full recall: AP@.5 = 0.5
    fp_first = _det([[50.0, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.8], [1, 1])
    assert coco_map([fp_first], [target])["box_map50"] == pytest.approx(0.5, abs=1e-2)
    # a wrong class is no match
    assert coco_map([_det([[0.0, 0, 10, 10]], [0.9], [2])], [target])["box_map50"] <= 0


def test_coco_mask_map_and_empty_images():
    needs_coco()
    masks = torch.zeros(1, 20, 20, dtype=torch.uint8)
    masks[0, 2:8, 2:8] = 1
    target = {"boxes": torch.tensor([[2.0, 2, 8, 8]]), "labels": torch.tensor([1]), "masks": masks}
    soft = masks[:, None].float() * 0.9  # Mask R-CNN style (n, 1, H, W) probabilities
    pred = {**_det([[2.0, 2, 8, 8]], [0.9], [1]), "masks": soft}
    empty_t = {
        "boxes": torch.zeros(0, 4),
        "labels": torch.zeros(0, dtype=torch.int64),
        "masks": torch.zeros(0, 20, 20, dtype=torch.uint8),
    }
    empty_p = {**_det(np.zeros((0, 4)), [], []), "masks": torch.zeros(0, 1, 20, 20)}
    r = coco_map([pred, empty_p], [target, empty_t], masks=True)
    assert r["mask_map50"] == pytest.approx(1.0) and r["mask_map"] == pytest.approx(1.0)
    assert r["box_map50"] == pytest.approx(1.0)
