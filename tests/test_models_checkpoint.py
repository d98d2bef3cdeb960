"""Checkpoint round trip and refusal of corrupt, foreign or mismatched files."""

from __future__ import annotations

import pytest
import torch

from models.architectures import build_model
from models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from models.errors import CheckpointError, ConfigError
from models.fcn import FCN
from models.unet import UNet
from models.zoo import load_model

torch.set_num_threads(1)


def _unet(widths=(2, 4), residual=False, **kw):
    encoder = {"widths": widths, "scale_factors": (1, 2, 2), "residual": residual}
    return UNet(ndim=3, encoder=encoder, up="interp_conv", skip="add", **kw)


def test_round_trip_restores_config_normalisation_and_outputs(tmp_path):
    net = _unet(residual=True)
    net.set_normalization(130.0, 33.0)
    net.train()
    net(torch.rand(2, 1, 4, 8, 8))  # move the batch-norm running statistics
    net.eval()
    path = tmp_path / "m.pt"
    save_checkpoint(path, net, metadata={"data": "toy", "iterations": 3})
    loaded = load_checkpoint(path)
    assert not loaded.training
    assert loaded.config == net.config
    assert loaded.spec == net.spec
    assert loaded.spec.normalization == {"mean": 130.0, "std": 33.0}
    assert loaded.metadata == {"data": "toy", "iterations": 3}
    x = torch.rand(1, 1, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    # by path through the zoo loader too, with its checksum
    by_path = load_model(path)
    assert len(by_path.checksum) == 64


def test_checkpoint_is_loadable_with_weights_only(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, _unet())
    payload = torch.load(path, weights_only=True)
    assert payload["architecture"] == "unet"
    assert tuple(payload["spec"]["size_multiple"]) == (1, 2, 2)


def test_affinity_model_spec_round_trip(tmp_path):
    offsets = [(-1, 0, 0), (0, -1, 0), (0, 0, -1), (0, 0, -4)]
    net = _unet(out_channels=4, output="affinity", offsets=offsets)
    save_checkpoint(tmp_path / "a.pt", net)
    spec = load_checkpoint(tmp_path / "a.pt").spec
    assert spec.output == "affinity" and spec.offsets == tuple(offsets)
    with pytest.raises(ConfigError, match="offset"):
        _unet(out_channels=2, output="affinity", offsets=offsets)


def test_corrupt_truncated_and_foreign_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(garbage)
    good = tmp_path / "good.pt"
    save_checkpoint(good, _unet())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a petaseg model"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


class _Payload:  # an arbitrary object: weights_only loading must refuse to build it
    pass


def test_pickled_objects_are_not_loaded(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "petaseg-model", "obj": _Payload()}, path)
    with pytest.raises(CheckpointError, match="corrupt or not a PyTorch file"):
        read_checkpoint(path)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "fcn.pt"
    save_checkpoint(path, FCN(encoder={"widths": (2, 2, 2)}, variant="16s"))
    with pytest.raises(CheckpointError, match="'fcn' model, not the expected 'unet'"):
        load_checkpoint(path, architecture="unet")
    with pytest.raises(CheckpointError, match="'fcn' model, not the expected 'unet'"):
        load_checkpoint(path, model=_unet())
    other = tmp_path / "wide.pt"
    save_checkpoint(other, _unet(widths=(3, 6)))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(other, model=_unet())


def test_unknown_architecture_and_bad_config():
    with pytest.raises(ConfigError, match="unknown"):
        build_model("transformer", {})
    with pytest.raises(ConfigError, match="invalid"):
        build_model("unet", {"depth_of_field": 3})


def test_unknown_zoo_name_lists_the_shipped_models():
    with pytest.raises(CheckpointError, match="neither a shipped model"):
        load_model("no-such-model-v0")
