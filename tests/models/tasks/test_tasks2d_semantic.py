"""Semantic segmentation (U-Net / FCN with every upsampling) and the sliding-window baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import ConfigError, InputError
from models.tasks.semantic import SemanticNet, valid_variants
from models.tasks.sliding_window import PATCH, PatchClassifier
from models.train2d.batches import patch_batch, semantic_batch
from models.train2d.data import isbi_classes
from models.train2d.fit import fit
from tests.conftest import shared_file

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def isbi():
    shared_file("isbi2012/isbi2012_train.h5")
    from workflows.training.data2d import preset_url, read_sections

    raw = read_sections(preset_url("isbi", "raw"), 0, 2)
    labels = read_sections(preset_url("isbi", "labels"), 0, 2)
    return raw, isbi_classes(labels)


def test_every_variant_builds_and_keeps_the_input_size():
    x = torch.randn(1, 1, 64, 64)
    pairs = valid_variants()
    assert len(pairs) == 20 and ("fcn8s", "max_unpool") in pairs
    for arch, up in pairs:
        widths = [4, 8, 8, 8, 8, 8] if arch != "unet" else [4, 8]
        net = SemanticNet(["a", "b", "c"], arch, up, encoder={"widths": widths})
        assert net(x).shape == (1, 3, 64, 64), (arch, up)
    with pytest.raises(ConfigError, match="up="):
        SemanticNet(["a", "b"], "fcn8s", "unpool")
    with pytest.raises(ConfigError, match="arch"):
        SemanticNet(["a", "b"], "segnet")


@pytest.mark.parametrize(
    "arch,up,steps",
    # FCN unpooling starts from sparse scores and falls slower (0.62 -> 0.50 in 24 steps)
    [("unet", "max_unpool", 12), ("fcn8s", "nearest", 12), ("fcn16s", "max_unpool", 24)],
)
def test_training_on_real_isbi_lowers_the_loss(isbi, arch, up, steps):
    raw, cmap = isbi
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    norm = {"mean": 0.5, "std": 0.2}
    batch = semantic_batch(raw, cmap, 64, 4, rng, norm)
    net = SemanticNet(
        ["cell", "membrane"],
        arch,
        up,
        normalization=norm,
        encoder={"widths": [8, 16, 32] if arch == "unet" else [8, 16, 32, 32, 32, 32]},
    )
    hist = fit(net, lambda it: batch, steps, lr=3e-3, warmup=1)
    assert np.mean(hist["loss"][-3:]) < 0.85 * np.mean(hist["loss"][:2])
    prob = net.predict(batch[0][:1, :, :50, :61])  # not a multiple of the stride: padded
    assert prob.shape == (1, 2, 50, 61)
    assert torch.allclose(prob.sum(1), torch.ones(1, 50, 61), atol=1e-5)


def test_bad_input_is_refused():
    net = SemanticNet(["a", "b"], "unet", encoder={"widths": [4, 8]})
    with pytest.raises(InputError, match="grayscale"):
        net.predict(torch.zeros(1, 3, 32, 32))  # RGB into a grayscale model
    with pytest.raises(InputError, match="multiple"):
        net(torch.zeros(1, 1, 33, 32))  # forward needs the stride; predict pads instead
    with pytest.raises(InputError, match="targets"):
        net.losses(torch.zeros(2, 1, 32, 32), torch.zeros(2, 16, 16, dtype=torch.long))


def test_sliding_window_equals_its_dense_form_and_learns(isbi):
    raw, cmap = isbi
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    norm = {"mean": 0.5, "std": 0.2}
    model = PatchClassifier(["cell", "membrane"], widths=(8, 8, 16), hidden=32, normalization=norm)
    batch = patch_batch(raw, cmap, 64, rng, norm)
    assert batch[0].shape == (64, 1, PATCH, PATCH)
    hist = fit(model, lambda it: batch, 15, lr=3e-3, warmup=1)
    assert np.mean(hist["loss"][-3:]) < 0.9 * np.mean(hist["loss"][:2])
    crop = (torch.from_numpy(raw[0, :24, :40].copy()).float()[None, None] / 255 - 0.5) / 0.2
    naive = model.sliding_window(crop, batch=200)
    dense = model.dense(crop)
    assert naive.shape == dense.shape == (1, 2, 24, 40)
    assert torch.allclose(naive, dense, atol=1e-4)
    # the naive form classifies exactly the patch centred (BEFORE, BEFORE) on each pixel
    one = model(model.pad(crop)[:, :, 5 : 5 + PATCH, 7 : 7 + PATCH])
    assert torch.allclose(one[0], naive[0, :, 5, 7], atol=1e-4)
