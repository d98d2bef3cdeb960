"""Detectors composed from injected parts: a different backbone or RoI head drops in, and the
model still trains (a forward/loss step that moves the weights) and predicts."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor

from models.encoders import get_encoder
from models.errors import ConfigError
from models.tasks import (
    RCNN,
    EncoderFPN,
    GridConfig,
    GridDetector,
    TwoStageConfig,
    make_backbone,
    make_roi_heads,
    make_rpn,
    make_transform,
)
from tests.conftest import assert_one_step_learns

torch.set_num_threads(1)
SMALL = {"widths": [8, 16, 16, 32, 32]}


def _square_images():
    """Two 128 x 128 images, each with one bright square and its box."""
    images, targets = [], []
    for x0, y0 in ((20, 30), (60, 16)):
        img = torch.full((1, 128, 128), 0.2)
        img[:, y0 : y0 + 24, x0 : x0 + 24] = 0.9
        images.append(img)
        box = torch.tensor([[x0, y0, x0 + 24, y0 + 24]], dtype=torch.float32)
        targets.append({"boxes": box, "labels": torch.tensor([1])})
    return images, targets


def _train_and_predict(model) -> None:
    images, targets = _square_images()
    model.train()
    terms = model.losses(images, targets)
    assert_one_step_learns(model, terms)
    model.eval()
    pred = model.predict(images[:1])[0]
    assert pred["boxes"].shape[1] == 4 and len(pred["boxes"]) == len(pred["scores"])


def test_two_stage_on_a_resnet_backbone():
    torch.manual_seed(0)
    config = TwoStageConfig(1, fpn_channels=16, representation=32)
    backbone = EncoderFPN(get_encoder("resnet18", in_channels=1), (1, 2, 3), out_channels=16)
    assert backbone.names == ["0", "1", "2", "pool"]  # four maps: one anchor tuple each
    model = RCNN(
        backbone,
        make_rpn(config, backbone),
        make_roi_heads(config, backbone),
        make_transform(config, backbone),
        config,
    )
    assert model.task == "detect" and model.transform.size_divisible == 32
    _train_and_predict(model)


def test_two_stage_with_another_box_head_and_mask_rcnn_from_parts():
    torch.manual_seed(0)
    config = TwoStageConfig(1, encoder=SMALL, fpn_channels=16, representation=32)
    backbone = make_backbone(config)
    heads = make_roi_heads(config, backbone)
    heads.box_head = FastRCNNConvFCHead((16, 7, 7), [16, 16], [32])  # convolutions, then FC
    heads.box_predictor = FastRCNNPredictor(32, 2)
    model = RCNN(
        backbone, make_rpn(config, backbone), heads, make_transform(config, backbone), config
    )
    _train_and_predict(model)
    masks = TwoStageConfig(1, encoder=SMALL, fpn_channels=16, representation=32, masks=True)
    backbone = make_backbone(masks)
    parts = make_rpn(masks, backbone), make_roi_heads(masks, backbone)
    mask_rcnn = RCNN(backbone, *parts, make_transform(masks, backbone), masks)
    assert mask_rcnn.task == "instance" and mask_rcnn.config["masks"]
    images, targets = _square_images()
    for img, t in zip(images, targets, strict=True):
        x0, y0, x1, y1 = (int(v) for v in t["boxes"][0])
        t["masks"] = torch.zeros(1, *img.shape[-2:], dtype=torch.uint8)
        t["masks"][0, y0:y1, x0:x1] = 1
    mask_rcnn.train()
    terms = mask_rcnn.losses(images, targets)
    assert "loss_mask" in terms
    assert_one_step_learns(mask_rcnn, terms)


def test_grid_detector_on_a_resnet_backbone():
    torch.manual_seed(0)
    config = GridConfig(1, stride=8, fpn_channels=16)
    resnet = get_encoder("resnet18", in_channels=1)
    model = GridDetector(EncoderFPN(resnet, (2, 3, 4), 16, extra_pool=False), config)
    _train_and_predict(model)
    with pytest.raises(ConfigError, match="first map is at stride 4, the grid at 8"):
        GridDetector(EncoderFPN(resnet, (1, 2), 16, extra_pool=False), config)


def test_detector_configs_are_json_and_refuse_unknown_options():
    config = TwoStageConfig(2, class_names=["mito", "syn"], encoder=SMALL)
    again = TwoStageConfig(**config.to_dict())
    assert again == config and again.to_dict() == config.to_dict()
    assert config.to_dict()["encoder"]["widths"] == SMALL["widths"]
    with pytest.raises(ConfigError, match="anchorz"):
        TwoStageConfig.from_options(1, anchorz=[[8]])
    with pytest.raises(ConfigError, match="3 class names for 2 classes"):
        GridConfig(2, class_names=["a", "b", "c"])
