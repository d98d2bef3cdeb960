"""Tiled prediction equals one whole pass; metrics by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import InputError
from models.unet import UNet
from models.volumetric.metrics import average_precision, f1_score
from models.volumetric.predict import normalize, predict_volume

torch.set_num_threads(1)


def _model():
    torch.manual_seed(0)
    net = UNet(
        ndim=3,
        encoder={"widths": (2, 4, 4), "scale_factors": [(1, 2, 2), 2]},
        normalization={"mean": 100, "std": 40},
    )
    net.train()
    with torch.no_grad():
        net(torch.randn(2, 1, 8, 16, 16))  # non-trivial batch-norm statistics
    return net.eval()


def test_tiled_prediction_equals_a_single_pass():
    net = _model()
    spec = net.spec
    assert all(c % m == 0 and c >= r // 2 for c, m, r in
               zip(spec.context, spec.size_multiple, spec.receptive_field, strict=False))  # fmt: skip
    raw = np.random.default_rng(0).integers(0, 255, size=(13, 30, 21)).astype(np.uint8)
    whole = predict_volume(net, raw, tile_shape=(64, 64, 64))
    tiled = predict_volume(net, raw, tile_shape=(8, 16, 16))
    assert whole.shape == (1, 13, 30, 21)
    assert np.allclose(whole, tiled, atol=1e-5)
    assert 0.0 <= whole.min() and whole.max() <= 1.0
    fast = predict_volume(net, raw, tile_shape=(8, 16, 16), precision="bf16")
    assert np.abs(fast - whole).max() < 0.05


def test_prediction_input_errors_and_normalisation():
    net = _model()
    with pytest.raises(InputError, match="channel"):
        predict_volume(net, np.zeros((2, 4, 8, 8), np.uint8))
    with pytest.raises(InputError, match="precision"):
        predict_volume(net, np.zeros((4, 8, 8), np.uint8), precision="fp8")
    assert np.allclose(normalize(np.array([60, 100, 180], np.uint8), net.spec), [-1, 0, 2])


def test_f1_and_average_precision_by_hand():
    pred = np.array([0.9, 0.8, 0.3, 0.1])
    target = np.array([1, 0, 1, 0])
    f1 = f1_score(pred, target, threshold=0.5)
    assert f1 == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert average_precision(pred, target) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    # masked voxels do not count
    mask = np.array([1, 0, 1, 1])
    assert average_precision(pred, target, mask) == pytest.approx(1.0)
    assert f1_score(pred, target, mask)["f1"] == pytest.approx(2 / 3)
