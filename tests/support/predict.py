"""A tiny network and a raw volume for the predict-stage tests."""

from __future__ import annotations

import numpy as np
import torch

from models.unet import UNet
from pipeline.io.volume import create_volume


def tiny_net(seed: int = 0, widths=(4, 8)) -> UNet:
    """A small randomly initialised 'same'-padded U-Net (size multiple 2)."""
    torch.manual_seed(seed)
    net = UNet(encoder={"widths": widths, "norm": None}).eval()
    net.set_normalization(128.0, 40.0)
    return net


def write_input(url: str, raw: np.ndarray, chunks=(16, 16, 16)) -> str:
    vol = create_volume(url, raw.shape, raw.dtype, (10, 10, 10), chunks=chunks)
    vol.write(vol.roi, raw)
    return url
