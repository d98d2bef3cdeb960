"""Mask R-CNN on our encoder + FPN: real FIB neuron profiles, empty tiles, masks to labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import InputError
from models.tasks.instance import build_mask_rcnn, masks_to_label_image
from models.train2d.batches import detection_batch
from models.train2d.data import fib_instances
from models.train2d.fit import fit
from tests.conftest import assert_one_step_learns, shared_file

torch.set_num_threads(1)
SMALL = {"widths": [8, 16, 16, 32, 32]}


@pytest.fixture(scope="module")
def fib_batch():
    shared_file("fib_medulla_flyem/fib_medulla_train.h5")
    from workflows.training.data2d import preset_url, read_sections

    raw = read_sections(preset_url("fib", "raw"), 0, 2)
    ids = read_sections(preset_url("fib", "labels"), 0, 2)
    data = fib_instances(raw, ids, min_area=64)
    images, targets = detection_batch(
        data, 96, 2, np.random.default_rng(0), min_area=30, masks=True
    )
    assert all(len(t["boxes"]) > 0 for t in targets)
    assert targets[0]["masks"].shape[1:] == (96, 96)
    return images, targets


def test_mask_rcnn_trains_on_neuron_profiles(fib_batch):
    torch.manual_seed(0)
    images, targets = fib_batch
    model = build_mask_rcnn(
        1, class_names=["neuron_profile"], encoder=SMALL, fpn_channels=32, representation=64
    )
    model.train()
    assert "loss_mask" in model.losses(images, targets)
    hist = fit(model, lambda it: (images, targets), 12, lr=3e-3, warmup=1)
    assert np.mean(hist["loss"][-3:]) < 0.85 * np.mean(hist["loss"][:2])
    pred = model.predict([images[0][:, :90, :93]])[0]  # not a multiple of the stride
    assert pred["masks"].shape[1:] == (1, 90, 93)
    labels = masks_to_label_image(pred, (90, 93), score_thresh=0.0)
    assert labels.shape == (90, 93) and labels.max() <= len(pred["scores"])


def test_empty_tiles_and_bad_masks():
    model = build_mask_rcnn(1, encoder=SMALL)
    model.train()
    empty = [
        {
            "boxes": torch.zeros(0, 4),
            "labels": torch.zeros(0, dtype=torch.int64),
            "masks": torch.zeros(0, 64, 64, dtype=torch.uint8),
        }
    ]
    terms = model.losses([torch.rand(1, 64, 64)], empty)
    assert terms["loss_mask"] == 0 and terms["loss_objectness"] > 0
    assert_one_step_learns(model, terms)
    no_masks = [{"boxes": torch.tensor([[1.0, 1, 9, 9]]), "labels": torch.tensor([1])}]
    with pytest.raises(InputError, match="masks must be"):
        model.losses([torch.rand(1, 64, 64)], no_masks)


def test_masks_to_label_image_gives_overlaps_to_the_best_score():
    masks = torch.zeros(3, 1, 6, 6)
    masks[0, 0, :3, :3] = 0.9
    masks[1, 0, 1:4, 1:4] = 0.8
    masks[2, 0, 4:, 4:] = 0.9
    pred = {"masks": masks, "scores": torch.tensor([0.6, 0.9, 0.2])}
    out = masks_to_label_image(pred, (6, 6), score_thresh=0.5)
    assert out[1, 1] == 1 and out[0, 0] == 2 and out[5, 5] == 0  # id 1 = highest score
    assert out.max() == 2
