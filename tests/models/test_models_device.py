"""Training on a device: a few iterations of the 3D boundary U-Net and of a 2D semantic network
move the weights on that device, checkpoint, and resume from the checkpoint on it. The CPU cases
run in every suite; the CUDA cases are marked ``gpu`` (bf16 autocast for the 3D model there)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.checkpoint import TASK_MODELS, load_checkpoint, read_checkpoint, save_checkpoint
from models.device import resolve_device
from models.errors import ConfigError
from models.volumetric import TrainConfig, train
from tests.models.test_models_train import TINY, synthetic_pair
from tests.support.devices import DEVICES

torch.set_num_threads(1)


def _weights(state: dict) -> torch.Tensor:
    return torch.cat([v.float().reshape(-1).cpu() for v in state.values() if v.is_floating_point()])


@pytest.mark.parametrize("device", DEVICES)
def test_3d_training_moves_weights_checkpoints_and_resumes_on(device, tmp_path):
    raw, labels = synthetic_pair()
    out = tmp_path / "run.pt"
    cfg = {"model": TINY, "crop_shape": [16, 16, 16], "iterations": 2, "val_every": 100,
           "checkpoint_every": 100, "lr": 5e-3, "threads": 1, "device": device,
           "precision": "bf16" if device == "cuda" else "fp32"}  # fmt: skip
    first = train(raw, labels, out, cfg, progress=False, log=lambda m: None)
    assert first["device"].startswith(device)
    assert all(p.device.type == device for p in first["model"].parameters())
    saved = read_checkpoint(out)
    assert saved["train_state"]["iteration"] == 2
    assert all(v.device.type == "cpu" for v in saved["state_dict"].values())  # portable file
    second = train(
        raw, labels, out, {"iterations": 4}, resume=True, progress=False, log=lambda m: None
    )
    assert second["iterations"] == 4 and second["device"].startswith(device)
    assert second["history"]["loss"][:2] == first["history"]["loss"]
    after = read_checkpoint(out)
    moved = (_weights(after["state_dict"]) - _weights(saved["state_dict"])).abs().max()
    assert torch.isfinite(_weights(after["state_dict"])).all() and moved > 0
    # the optimiser state resumed on the device too (Adam's step count went on from 2)
    steps = [s["step"] for s in after["train_state"]["optimizer"]["state"].values()]
    assert steps and all(float(s) == 4 for s in steps)


@pytest.mark.parametrize("device", DEVICES)
def test_2d_training_moves_weights_checkpoints_and_resumes_on(device, tmp_path):
    from models.tasks.semantic import SemanticNet
    from models.train2d import fit

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.normal(0, 1, (4, 1, 32, 32)).astype(np.float32))
    classes = (images[:, 0] > 0).long()  # learnable: the class is the sign of the pixel
    net = SemanticNet(["dark", "bright"], "unet", encoder={"widths": [4, 8]})
    before = _weights(net.state_dict())
    hist = fit(net, lambda it: (images, classes), 3, lr=3e-3, warmup=1, device=device)
    assert hist["device"].startswith(device)
    assert all(p.device.type == device for p in net.parameters())
    trained = _weights(net.state_dict())
    assert (trained - before).abs().max() > 0 and torch.isfinite(trained).all()
    save_checkpoint(tmp_path / "sem.pt", net)
    again = load_checkpoint(tmp_path / "sem.pt", map_location=device, family=TASK_MODELS)
    assert torch.equal(_weights(again.state_dict()), trained)
    hist2 = fit(again, lambda it: (images, classes), 2, lr=3e-3, warmup=1, device=device)
    assert np.isfinite(hist2["loss"]).all()
    assert (_weights(again.state_dict()) - trained).abs().max() > 0


def test_device_names_are_checked():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="device"):
        TrainConfig.from_dict({"device": "tpu"})
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")
