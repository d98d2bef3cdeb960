"""Two-stage (torchvision pieces on our encoder + FPN) and single-shot grid detection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import ConfigError, InputError
from models.tasks.detect_grid import build_grid_detector, fit_anchors
from models.tasks.detect_two_stage import build_two_stage
from models.train2d.batches import detection_batch
from models.train2d.fit import fit
from tests.conftest import assert_one_step_learns, shared_file

torch.set_num_threads(1)
SMALL = {"widths": [8, 16, 16, 32, 32]}


@pytest.fixture(scope="module")
def vnc_batch():
    shared_file("drosophila_vnc_sstem/vnc_stack1.h5")
    from workflows.training.data2d import instance_data

    data = instance_data("vnc", "val")
    images, targets = detection_batch(data, 128, 2, np.random.default_rng(1))
    assert sum(len(t["boxes"]) for t in targets) > 0
    return images, targets


def _empty(n=1, size=128):
    return [torch.rand(1, size, size) for _ in range(n)], [
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)} for _ in range(n)
    ]


def test_anchor_and_feature_map_counts_agree():
    model = build_two_stage(2, encoder=SMALL, anchor_sizes=[[8, 12], [16, 24], [32, 48], [64, 96]])
    n, maps = model.anchor_count((256, 256))
    assert maps == [(64, 64), (32, 32), (16, 16), (8, 8)]  # strides 4, 8, 16 and the pool level
    per_cell = model.rpn.anchor_generator.num_anchors_per_location()
    assert per_cell == [6, 6, 6, 6]  # 2 sizes x 3 aspect ratios, as the RPN head predicts
    assert model.rpn.head.cls_logits.out_channels == 6
    assert n == sum(h * w * 6 for h, w in maps)
    n250, maps250 = model.anchor_count((250, 250))  # padded up to the stride
    assert maps250 == maps and n250 == n
    with pytest.raises(ConfigError, match="one tuple of sizes per map"):
        build_two_stage(2, encoder=SMALL, anchor_sizes=[[8], [16], [32]])


def test_two_stage_trains_on_real_tiles_and_on_empty_ones(vnc_batch):
    torch.manual_seed(0)
    model = build_two_stage(2, encoder=SMALL, fpn_channels=32, representation=64)
    images, targets = vnc_batch
    hist = fit(model, lambda it: (images, targets), 8, lr=2e-3, warmup=1)
    assert np.mean(hist["loss"][-2:]) < 0.8 * np.mean(hist["loss"][:2])
    model.train()
    e_images, e_targets = _empty(2)
    terms = model.losses(e_images, e_targets)  # no objects: only background terms
    assert terms["loss_box_reg"] == 0 and terms["loss_classifier"] > 0
    assert_one_step_learns(model, terms)
    model.roi_heads.score_thresh = 0.0  # keep every detection: check where they land
    pred = model.predict([images[0][:, :100, :150]])[0]  # sizes not divisible by the stride
    assert pred["boxes"].shape[0] > 0 and pred["boxes"].shape[1] == 4
    assert (pred["boxes"][:, 2] <= 150).all() and (pred["boxes"][:, 3] <= 100).all()
    assert set(pred["labels"].tolist()) <= {1, 2}
    props = model.propose(images, 50)
    assert all(p.shape[0] <= 50 and p.shape[1] == 4 for p in props)


def test_bad_detection_input_is_refused():
    model = build_two_stage(1, encoder=SMALL)
    model.train()
    images, targets = _empty(1, 64)
    with pytest.raises(InputError, match="RGB .3 channels. but the model takes grayscale"):
        model.losses([torch.rand(3, 64, 64)], targets)
    bad = [{"boxes": torch.tensor([[10.0, 10, 10, 20]]), "labels": torch.tensor([1])}]
    with pytest.raises(InputError, match="degenerate"):
        model.losses(images, bad)
    with pytest.raises(InputError, match="labels must be 1..1"):
        model.losses(
            images, [{"boxes": torch.tensor([[1.0, 1, 5, 5]]), "labels": torch.tensor([0])}]
        )
    with pytest.raises(InputError, match="float"):
        model.predict([torch.zeros(1, 64, 64, dtype=torch.uint8)])
    grid = build_grid_detector(1, encoder=SMALL)
    with pytest.raises(InputError, match="degenerate"):
        grid.losses(images, bad)
    with pytest.raises(InputError, match="grayscale"):
        grid.predict([torch.rand(3, 64, 64)])


def test_grid_assignment_round_trip_and_cell_count():
    grid = build_grid_detector(2, encoder=SMALL, anchors=[[10, 10], [30, 20]])
    slots, shape = grid.cell_count((128, 96))
    assert shape == (16, 12) and slots == 2 * 16 * 12
    boxes = torch.tensor([[20.0, 30, 50, 52], [70, 70, 80, 81]])
    pos, reg, cls = grid._assign(boxes, torch.tensor([1, 2]), 16, 12)
    assert int(pos.sum()) == 2
    # box 0: centre (35, 41) -> cell (row 5, col 4), anchor 30x20; box 1 -> anchor 10x10
    assert pos[1, 5, 4] and pos[0, 9, 9] and cls[5, 4] == 0 and cls[9, 9] == 1
    # decoding the targets (inverse sigmoid of the offsets) gives the boxes back
    raw = torch.zeros(1, 2, 5, 16, 12)
    raw[0, :, :2] = torch.logit(reg[..., :2].permute(0, 3, 1, 2).clamp(1e-4, 1 - 1e-4))
    raw[0, :, 2:4] = reg[..., 2:].permute(0, 3, 1, 2)
    decoded = grid._decode(raw)[0]
    assert torch.allclose(decoded[1, 5, 4], boxes[0], atol=1e-2)
    assert torch.allclose(decoded[0, 9, 9], boxes[1], atol=1e-2)
    assert fit_anchors([[10, 10], [12, 11], [30, 30], [28, 33], [60, 50], [55, 58]], 3) == [
        [11, 10],
        [29, 32],
        [58, 54],
    ]


def test_grid_detector_trains_and_predicts(vnc_batch):
    torch.manual_seed(0)
    images, targets = vnc_batch
    grid = build_grid_detector(2, encoder=SMALL, fpn_channels=32)
    hist = fit(grid, lambda it: (images, targets), 10, lr=3e-3, warmup=1)
    assert np.mean(hist["loss"][-2:]) < 0.8 * np.mean(hist["loss"][:2])
    grid.train()
    e_images, e_targets = _empty(2)
    terms = grid.losses(e_images, e_targets)
    assert terms["loss_xy"] == 0 and terms["loss_conf"] > 0  # empty images still teach "nothing"
    assert_one_step_learns(grid, terms)
    grid.score_thresh = 0.0  # keep every detection: check their labels and boxes
    out = grid.predict([images[0][:, :100, :150]])[0]
    assert set(out) == {"boxes", "scores", "labels"} and 0 < len(out["boxes"]) <= 100
    assert out["labels"].min() >= 1 and out["labels"].max() <= 2
    assert (out["boxes"][:, 2] > out["boxes"][:, 0]).all()


def test_roi_pooling_variant():
    from models.tasks.roi_pool import MultiScaleRoIPool

    pool = MultiScaleRoIPool(["0", "1"], 2, canonical_scale=16, canonical_level=3)
    f0 = torch.arange(64.0).view(1, 1, 8, 8)  # stride 4 on a 32 x 32 image
    f1 = -torch.ones(1, 1, 4, 4)  # stride 8
    # sqrt(area) 4 -> level floor(3 + log2(1 / 4)) = 1, clamped to the finest (2); torchvision's
    # roi_pool rounds x2 = 4 / 4 = 1 and counts it inclusively: feature cells 0..1
    small = torch.tensor([[0.0, 0, 4, 4]])
    big = torch.tensor([[0.0, 0, 32, 32]])  # -> level 4, clamped to the coarsest (3)
    out = pool({"0": f0, "1": f1}, [torch.cat([small, big])], [(32, 32)])
    assert out.shape == (2, 1, 2, 2)
    assert out[0, 0].tolist() == [[0.0, 1.0], [8.0, 9.0]]  # the 2x2 cells of f0's corner
    assert (out[1] == -1).all()  # pooled from the stride-8 map
    torch.manual_seed(0)
    model = build_two_stage(1, encoder=SMALL, roi_op="pool", fpn_channels=16, representation=32)
    model.train()
    images, targets = _empty(1, 64)
    targets = [{"boxes": torch.tensor([[8.0, 8, 30, 28]]), "labels": torch.tensor([1])}]
    terms = model.losses(images, targets)
    sum(terms.values()).backward()
    assert model.predict(images)[0]["boxes"].shape[1] == 4
    with pytest.raises(ConfigError, match="roi_op"):
        build_two_stage(1, encoder=SMALL, roi_op="warp")
