"""petaseg's patch placement, window and blended result equal MONAI's sliding_window_inference
(the peer the benchmark compares against), so 'same arithmetic' is checked, not assumed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.inference.patch_grid import AxisGrid
from pipeline.inference.window import gaussian_window
from pipeline.stages.predict import predict_array
from tests.support.predict import tiny_net

monai_utils = pytest.importorskip("monai.data.utils", reason="monai (bench extra) not installed")


def test_patch_starts_equal_monai_dense_patch_slices():
    cases = [(250, 64, 0.5), (97, 32, 0.25), (50, 16, 0.75), (33, 32, 0.5), (64, 64, 0.5)]
    for size, patch, overlap in cases:
        a = AxisGrid.build(size, patch, overlap)
        interval = (max(1, int(patch * (1 - overlap))) if patch < size else patch,)
        theirs = monai_utils.dense_patch_slices((size,), (patch,), interval)
        assert [a.start(k) for k in range(a.count)] == [s[0].start for s in theirs]


def test_window_equals_monai_importance_map():
    for patch in [(64, 64, 64), (16, 24, 8)]:
        ours = gaussian_window(patch)
        theirs = monai_utils.compute_importance_map(patch, mode="gaussian", sigma_scale=0.125)
        assert torch.equal(ours, theirs)
        assert float(ours.min()) >= 1e-3  # tiny corner weights are floored


def test_whole_volume_pass_equals_monai_sliding_window():
    from monai.inferers import sliding_window_inference

    net = tiny_net()
    raw = np.random.default_rng(0).integers(0, 255, (24, 40, 30), dtype=np.uint8)
    for patch, overlap in [((8, 32, 16), 0.25), ((32, 16, 16), 0.5)]:  # z thinner than patch
        ours = predict_array(net, raw, patch=patch, overlap=overlap, batch_size=3, device="cpu")
        x = torch.from_numpy((raw.astype(np.float32) - 128.0) / 40.0)[None, None]
        with torch.inference_mode():
            theirs = sliding_window_inference(
                x, patch, 2, lambda t: torch.sigmoid(net(t)), overlap=overlap, mode="gaussian"
            )
        assert np.abs(ours - theirs[0].numpy()).max() <= 1e-5, (patch, overlap)
