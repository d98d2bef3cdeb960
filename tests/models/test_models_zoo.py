"""The shipped model: loads by name, describes itself, and reaches on its held-out sections
(z 130..159 of the FIB medulla crop, never trained on) the figures its model card states."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from models.zoo import ZOO, available, load_model, model_path
from tests.conftest import shared_file

NAME = "fib-boundary-v1"


def card_figure(key: str, name: str = NAME) -> float:
    text = (ZOO / f"{name}.md").read_text()
    match = re.search(rf"^{key}: ([0-9.]+)$", text, re.M)
    assert match, f"model card {name}.md states no '{key}: <number>' line"
    return float(match.group(1))


def held_out_sections():
    """Raw and neuron ids of z 130..159 of the FIB crop (never trained on by the zoo models)."""
    import h5py

    path = shared_file("fib_medulla_flyem/fib_medulla_train.h5")
    with h5py.File(path, "r") as f:
        return f["volumes/raw"][130:160], f["volumes/labels/neuron_ids"][130:160]


def test_shipped_model_loads_by_name_and_describes_itself():
    assert NAME in available()
    path = model_path(NAME)
    assert path.stat().st_size < 20 * 2**20
    model = load_model(NAME)
    spec = model.spec
    assert (spec.in_channels, spec.out_channels, spec.output, spec.ndim) == (1, 1, "boundary", 3)
    assert spec.size_multiple == (8, 8, 8) and spec.context == (48, 48, 48)
    assert 100 < spec.normalization["mean"] < 160 and spec.normalization["std"] > 10
    assert model.metadata["train_z"] == [0, 130] and model.metadata["val_z"] == [130, 160]
    assert len(model.checksum) == 64
    with torch.no_grad():  # runs on any size that fits the stride, output the input's shape
        assert model(torch.zeros(1, 1, 16, 24, 32)).shape == (1, 1, 16, 24, 32)


@pytest.mark.realdata
def test_shipped_model_reaches_its_card_figures_on_held_out_sections():
    from models.volumetric.metrics import average_precision, f1_score
    from models.volumetric.predict import cpu_has_native_bf16, predict_volume
    from models.volumetric.targets import boundary_map

    raw, labels = held_out_sections()
    torch.set_num_threads(2)
    model = load_model(NAME)
    # bf16 is the fast path where the CPU has it natively (emulated it is many times slower than
    # fp32); one tile over y, x: 40 % less context to pay
    bf16 = cpu_has_native_bf16()
    pred = predict_volume(
        model, raw, tile_shape=(32, 256, 256), precision="bf16" if bf16 else "fp32"
    )[0]
    target, mask = boundary_map(labels)
    f1 = f1_score(pred, target, mask, 0.5)["f1"]
    ap = average_precision(pred, target, mask)
    suffix = "_bf16" if bf16 else ""
    assert f1 == pytest.approx(card_figure(f"val_boundary_f1{suffix}"), abs=0.005)
    assert ap == pytest.approx(card_figure(f"val_average_precision{suffix}"), abs=0.005)
    assert f1 >= card_figure("val_boundary_f1") - 0.01  # bf16 within a hair of fp32
    assert np.isfinite(pred).all()
