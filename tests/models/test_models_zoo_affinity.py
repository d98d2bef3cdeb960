"""The shipped affinity model fib-affinity-v2: loads by name, describes its offsets, and reaches
on its held-out sections (z 130..159 of the FIB medulla crop, never trained on) the figures its
model card states (affinity F1 at 0.5 and average precision over all channels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.zoo import available, load_model, model_path
from tests.models.test_models_zoo import card_figure as card_figure_of
from tests.models.test_models_zoo import held_out_sections

NAME = "fib-affinity-v2"


def card_figure(key: str) -> float:
    return card_figure_of(key, NAME)


def test_affinity_model_loads_by_name_and_describes_its_offsets():
    assert NAME in available()
    assert model_path(NAME).stat().st_size < 50 * 2**20
    model = load_model(NAME)
    spec = model.spec
    assert (spec.in_channels, spec.output, spec.ndim) == (1, "affinity", 3)
    assert spec.offsets[:3] == ((-1, 0, 0), (0, -1, 0), (0, 0, -1))  # nearest neighbours first
    assert len(spec.offsets) == spec.out_channels == 9 and model.aux_channels == 0
    assert model.metadata["train_z"] == [0, 130] and model.metadata["val_z"] == [130, 160]
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 16, 24, 32))
    assert out.shape == (1, 9, 16, 24, 32)


@pytest.mark.realdata
def test_affinity_model_reaches_its_card_figures_on_held_out_sections():
    from models.volumetric.predict import cpu_has_native_bf16
    from models.volumetric.validation import validate

    raw, labels = held_out_sections()
    torch.set_num_threads(2)
    model = load_model(NAME)
    bf16 = cpu_has_native_bf16()
    scores = validate(model, raw, labels, "bce_dice", "bf16" if bf16 else "fp32")
    suffix = "_bf16" if bf16 else ""
    assert scores["f1"] == pytest.approx(card_figure(f"val_affinity_f1{suffix}"), abs=0.005)
    assert scores["ap"] == pytest.approx(card_figure(f"val_average_precision{suffix}"), abs=0.005)
    assert np.isfinite(scores["pred"]).all()
