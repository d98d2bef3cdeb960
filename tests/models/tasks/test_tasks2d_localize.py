"""Classification + localization on single VNC objects: two-term loss, training, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import ConfigError, InputError
from models.tasks.localize import Localizer
from models.train2d.batches import localization_batch
from models.train2d.data import localization_crops
from models.train2d.fit import fit
from tests.conftest import shared_file

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def crops():
    shared_file("drosophila_vnc_sstem/vnc_stack1.h5")
    from workflows.training.data2d import instance_data

    data = instance_data("vnc", "val")
    return localization_crops(data, 64, np.random.default_rng(0))


def test_real_crops_hold_mitochondria_and_synapses(crops):
    assert crops.class_names == ("mitochondria", "synapse")
    assert set(crops.labels.tolist()) == {0, 1}
    assert crops.crops.shape[1:] == (64, 64)
    assert ((crops.boxes >= 0) & (crops.boxes <= 1)).all() and (crops.boxes[:, 2:] > 0).all()


@pytest.mark.parametrize("box_loss", ["smooth_l1", "l2"])
def test_two_term_loss_falls(crops, box_loss):
    torch.manual_seed(0)
    norm = {"mean": 0.5, "std": 0.2}
    model = Localizer(
        crops.class_names,
        encoder={"widths": [8, 16, 32, 32]},
        hidden=64,
        box_loss=box_loss,
        normalization=norm,
    )
    batch = localization_batch(crops, 16, np.random.default_rng(0), norm)
    terms = model.losses(*batch)
    assert set(terms) == {"loss_cls", "loss_box"}
    hist = fit(model, lambda it: batch, 15, lr=3e-3, warmup=1)
    assert np.mean(hist["loss"][-3:]) < 0.7 * np.mean(hist["loss"][:2])
    labels, prob, boxes = model.predict(batch[0])
    assert labels.shape == (16,) and prob.shape == (16, 2) and boxes.shape == (16, 4)
    assert ((boxes >= 0) & (boxes <= 1)).all()


def test_bad_input():
    model = Localizer(["a", "b"], encoder={"widths": [4, 8]})
    x = torch.zeros(2, 1, 32, 32)
    with pytest.raises(InputError, match="fractions"):  # a degenerate (zero-width) box
        model.losses(
            x, torch.tensor([0, 1]), torch.tensor([[0.5, 0.5, 0.0, 0.2], [0.5, 0.5, 0.2, 0.2]])
        )
    with pytest.raises(InputError, match="grayscale"):
        model.predict(torch.zeros(1, 3, 32, 32))
    with pytest.raises(InputError, match="multiple"):
        model.predict(torch.zeros(1, 1, 31, 32))
    with pytest.raises(ConfigError):
        Localizer(["a"], box_loss="l1")
