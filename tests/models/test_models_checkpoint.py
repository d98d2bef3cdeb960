"""Checkpoint round trip and refusal of corrupt, foreign or mismatched files."""

from __future__ import annotations

import pytest
import torch

from models.architectures import build_model
from models.checkpoint import (
    TASK_MODELS,
    VOLUMETRIC_MODELS,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from models.errors import CheckpointError, ConfigError
from models.fcn import FCN
from models.tasks import SemanticNet, build_grid_detector
from models.unet import UNet
from models.zoo import load_model, model_path

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


@pytest.mark.parametrize("family", [VOLUMETRIC_MODELS, TASK_MODELS])
def test_pickled_objects_are_not_loaded(tmp_path, family):
    path = tmp_path / "evil.pt"
    torch.save({"format": family.format, "obj": _Payload()}, path)
    with pytest.raises(CheckpointError, match="corrupt or not a PyTorch file"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="corrupt or not a PyTorch file"):
        load_checkpoint(path, family=family)


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


def test_one_reader_for_volumetric_and_2d_models(tmp_path):
    torch.manual_seed(0)
    unet = _unet().eval()
    semantic = SemanticNet(["cell", "membrane"], "fcn16s", encoder={"widths": [4] * 6}).eval()
    save_checkpoint(tmp_path / "u.pt", unet, {"data": "toy"})
    save_checkpoint(tmp_path / "s.pt", semantic, {"scale": 2})
    assert read_checkpoint(tmp_path / "u.pt")["format"] == "petaseg-model"
    assert read_checkpoint(tmp_path / "s.pt")["format"] == "petaseg-model2d"
    for path, net, x in (
        (tmp_path / "u.pt", unet, torch.rand(1, 1, 4, 8, 8)),
        (tmp_path / "s.pt", semantic, torch.rand(1, 1, 64, 64)),
    ):
        loaded = load_checkpoint(path)
        assert type(loaded) is type(net) and loaded.config == net.config and not loaded.training
        with torch.no_grad():
            assert torch.equal(loaded(x), net(x))
    assert load_checkpoint(tmp_path / "s.pt", family=TASK_MODELS).metadata == {"scale": 2}
    with pytest.raises(
        CheckpointError, match="is a 2D task checkpoint .a 'semantic' model., not a "
    ):
        load_model(tmp_path / "s.pt")  # the volumetric zoo refuses a 2D model by name
    with pytest.raises(CheckpointError, match="train it with `petaseg train2d`"):
        load_checkpoint(tmp_path / "u.pt", family=TASK_MODELS)


def _old_unet_config(norm: dict) -> dict:
    """A U-Net config as petaseg wrote it before the one encoder config (checkpoint v1)."""
    return {
        "in_channels": 1, "out_channels": 1, "ndim": 3, "widths": [2, 4],
        "scale_factors": [1, 2, 2], "kernel_sizes": 3, "down": "maxpool", "up": "interp_conv",
        "skip": "add", "norm": "batch", "activation": "relu", "residual": False, "n_convs": 2,
        "encoder": "conv", "output": "boundary", "offsets": None, "normalization": norm,
    }  # fmt: skip


def test_old_layout_configs_still_load(tmp_path):
    torch.manual_seed(0)
    net = _unet().eval()
    old = {
        "format": "petaseg-model", "version": 1, "architecture": "unet",
        "config": _old_unet_config(net.config["normalization"]), "spec": net.spec.to_dict(),
        "state_dict": net.state_dict(), "metadata": {}, "train_state": None,
    }  # fmt: skip
    torch.save(old, tmp_path / "v1.pt")
    loaded = load_checkpoint(tmp_path / "v1.pt")
    assert loaded.config == net.config and loaded.config["encoder"]["widths"] == [2, 4]
    x = torch.rand(1, 1, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    grid = build_grid_detector(1, encoder={"widths": [4, 8, 8, 16]}, anchors=[[8, 8]]).eval()
    config = dict(grid.config)
    flat = {
        k: v for k, v in config["encoder"].items() if k in ("widths", "norm", "down", "n_convs")
    }
    config["encoder"] = {"encoder": "conv", **flat}  # the 2D heads' old encoder dict
    old2d = {"format": "petaseg-model2d", "version": 1, "task": "grid_detect", "config": config}
    torch.save({**old2d, "state_dict": grid.state_dict(), "metadata": {}}, tmp_path / "g1.pt")
    assert load_checkpoint(tmp_path / "g1.pt", family=TASK_MODELS).config == grid.config
    # the shipped model is a version-1 file with a flat config
    shipped = read_checkpoint(model_path("fib-boundary-v1"))
    assert shipped["version"] == 1 and shipped["config"]["widths"] == [12, 24, 48, 96]
    assert load_model("fib-boundary-v1").config["encoder"]["widths"] == [12, 24, 48, 96]


def test_flat_training_model_config_builds_the_same_network():
    flat = {"ndim": 3, "widths": [4, 8], "scale_factors": 2, "norm": "group", "up": "nearest"}
    nested = {"ndim": 3, "encoder": {"widths": [4, 8], "norm": "group"}, "up": "nearest"}
    torch.manual_seed(0)
    a = build_model("unet", flat)
    torch.manual_seed(0)
    b = build_model("unet", nested)
    assert a.config == b.config
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
