"""Affinities with local shape descriptors as an auxiliary target (MTLSD): the sampler appends
the LSD channels, training moves both heads and resumes, export keeps the affinity channels
(same weights) and drops the LSD ones, and misuse is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.checkpoint import load_checkpoint, read_checkpoint
from models.errors import ConfigError
from models.volumetric import Sampler, TrainConfig, export_model, make_model, train
from models.volumetric.lsd import local_shape_descriptors
from tests.models.test_models_train import TINY, synthetic_pair

torch.set_num_threads(1)

OFFSETS = [[-1, 0, 0], [0, -1, 0], [0, 0, -1], [-3, 0, 0], [0, -3, 0], [0, 0, -3]]
MTLSD = {
    "model": TINY,
    "target": "affinity",
    "offsets": OFFSETS,
    "lsd_sigma": 3.0,
    "crop_shape": [16, 16, 16],
    "batch_size": 1,
    "iterations": 4,
    "val_every": 100,
    "checkpoint_every": 2,
    "threads": 1,
}


def test_sampler_appends_lsd_targets_after_the_affinities():
    raw, labels = synthetic_pair()
    cfg = TrainConfig.from_dict(MTLSD)
    model = make_model(cfg, raw)
    assert model.spec.out_channels == 6 and model.aux_channels == 10
    x, y, m = Sampler(raw, labels, model, cfg).sample(np.random.default_rng(1))
    assert y.shape == (1, 16, 16, 16, 16) and m.shape == y.shape
    lsd = y[0, 6:].numpy()
    assert 0.0 <= lsd.min() and lsd.max() <= 1.0
    assert (m[0, 6:] == 1).all()  # every voxel of these cells is labeled
    # with no augmentation the LSDs are those of the label crop (margin = the longest offset)
    still = {"flip": False, "transpose_axes": [], "misalign_p": 0.0}  # labels left as they are
    plain = TrainConfig.from_dict({**MTLSD, "augment": still})
    x, y, _ = Sampler(raw, labels, model, plain).sample(np.random.default_rng(2))
    rng = np.random.default_rng(2)
    start = [int(rng.integers(0, 24 - 22 + 1)) for _ in range(3)]
    crop = labels[tuple(slice(s, s + 22) for s in start)]
    expect = local_shape_descriptors(crop, 3.0, downsample=cfg.lsd_downsample)[:, 3:19, 3:19, 3:19]
    np.testing.assert_allclose(y[0, 6:].numpy(), expect, atol=1e-6)


def test_mtlsd_trains_resumes_and_exports_affinities_only(tmp_path):
    raw, labels = synthetic_pair()
    ckpt = tmp_path / "mtlsd.pt"
    first = train(raw, labels, ckpt, dict(MTLSD, iterations=2), progress=False)
    head = first["model"].head.weight.detach().clone()
    resumed = train(raw, labels, ckpt, {"iterations": 4}, resume=True, progress=False)
    assert resumed["iterations"] == 4 and len(resumed["history"]["loss"]) == 4
    assert not torch.equal(resumed["model"].head.weight[6:], head[6:])  # the LSD head learned
    state = read_checkpoint(ckpt)
    assert state["config"]["aux_channels"] == 10
    shipped = tmp_path / "affinity.pt"
    export_model(ckpt, shipped)
    model = load_checkpoint(shipped)
    assert model.aux_channels == 0 and model.head.weight.shape[0] == 6
    x = torch.rand(1, 1, 16, 16, 16)
    trained = resumed["model"].eval()
    with torch.no_grad():
        np.testing.assert_allclose(  # same weights; a 6- vs 16-channel conv rounds apart
            model.eval().predict_proba(x).numpy(), trained.predict_proba(x).numpy(), atol=1e-6
        )
        assert trained(x).shape[1] == 16 and model(x).shape[1] == 6


@pytest.mark.parametrize(
    "options",
    [
        {"target": "boundary", "lsd_sigma": 2.0},
        {"target": "affinity", "architecture": "fcn", "lsd_sigma": 2.0},
        {"target": "affinity", "lsd_sigma": 0.0},
    ],
)
def test_lsd_misuse_is_refused(options):
    with pytest.raises(ConfigError, match="lsd"):
        TrainConfig.from_dict(options)


def test_warm_start_copies_every_matching_layer_and_leaves_a_new_head(tmp_path):
    raw, labels = synthetic_pair()
    boundary = {k: v for k, v in MTLSD.items() if k not in ("target", "offsets", "lsd_sigma")}
    source = train(raw, labels, tmp_path / "b.pt", dict(boundary, iterations=1), progress=False)
    cfg = TrainConfig.from_dict({**MTLSD, "init_from": str(tmp_path / "b.pt")})
    from models.volumetric.train import warm_start

    model = make_model(cfg, raw)
    message = warm_start(model, cfg.init_from)
    own, theirs = model.state_dict(), source["model"].state_dict()
    copied = [k for k in own if own[k].shape == theirs[k].shape]
    assert f"{len(copied)} of {len(own)} tensors copied" in message
    assert all(torch.equal(own[k], theirs[k]) for k in copied)
    assert own["head.weight"].shape[0] == 16 and theirs["head.weight"].shape[0] == 1
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({**MTLSD, "lsd_downsample": 0})
