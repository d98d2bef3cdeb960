"""Selective-search-style proposals: the hierarchy, boxes around real objects, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from models.errors import InputError
from models.tasks.proposals import adjacency, hierarchical_grouping, selective_search
from models.train2d.metrics import proposal_scores
from tests.conftest import shared_file


def _discs() -> tuple[np.ndarray, torch.Tensor]:
    yy, xx = np.mgrid[:96, :96]
    img = np.full((96, 96), 170, np.float64)
    img[(yy - 25) ** 2 + (xx - 30) ** 2 < 12**2] = 60
    img[(yy - 65) ** 2 + (xx - 62) ** 2 < 18**2] = 90
    img += np.random.default_rng(0).normal(0, 4, img.shape)
    gt = torch.tensor([[18.0, 13, 42, 37], [44, 47, 80, 83]])
    return np.clip(img, 0, 255).astype(np.uint8), gt


def test_hierarchy_merges_to_one_region():
    labels = np.array([[0, 0, 1], [2, 2, 1], [3, 3, 3]])
    assert adjacency(labels) == {(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)}
    img = np.array([[10, 10, 200], [90, 90, 200], [150, 150, 150]], np.uint8)
    boxes, position = hierarchical_grouping(img, labels)
    assert len(boxes) == 4 + 3  # 4 initial regions, 3 merges
    assert boxes[np.argmin(position)].tolist() == [0, 0, 3, 3]  # the last merge is everything
    assert position[:4].min() > position[4:].max()  # initial regions rank last


def test_selective_search_finds_the_discs():
    img, gt = _discs()
    boxes = selective_search(img, scales=(50, 100))
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert len(torch.unique(boxes, dim=0)) == len(boxes)  # de-duplicated
    assert (box_iou(gt, boxes).max(1).values > 0.8).all()
    s = proposal_scores([(boxes, gt, torch.tensor([1, 1]))])
    assert s["recall"] == 1.0 and s["mabo"] > 0.8


def test_real_vnc_section_proposals():
    shared_file("drosophila_vnc_sstem/vnc_stack1.h5")
    from models.train2d.data import section_targets
    from workflows.training.data2d import instance_data

    data = instance_data("vnc", "val")
    crop = data.images[0, :192, :192]
    boxes = selective_search(crop, scales=(100,), similarities=("CTSF",))
    assert 20 < len(boxes) < 2000
    assert boxes.min() >= 0 and boxes[:, 2].max() <= 192 and boxes[:, 3].max() <= 192
    _, target = section_targets(data, 0, masks=False)
    keep = (target["boxes"][:, 2] <= 192) & (target["boxes"][:, 3] <= 192)
    assert keep.sum() >= 3  # the crop holds objects to find
    s = proposal_scores([(boxes, target["boxes"][keep], target["labels"][keep])])
    assert s["mabo"] > 0.2  # classical proposals find some of the EM objects


def test_bad_input():
    with pytest.raises(InputError, match="grayscale"):
        selective_search(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(InputError, match="similarity"):
        selective_search(np.zeros((32, 32), np.uint8), similarities=("XYZ",))
    boxes = selective_search(np.zeros((32, 32), np.float32))  # flat float image: one region
    assert boxes.tolist() == [[0, 0, 32, 32]]
