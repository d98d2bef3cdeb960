"""Training on synthetic data: a real step lowers the loss, runs checkpoint/plot/resume, the
CLI refuses mismatched volumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.checkpoint import load_checkpoint, read_checkpoint
from models.errors import ConfigError, InputError
from models.volumetric import Sampler, TrainConfig, export_model, make_model, train
from models.volumetric.losses import masked_loss

torch.set_num_threads(1)

TINY = {"ndim": 3, "widths": [4, 8], "scale_factors": 2}


def synthetic_pair(shape=(24, 24, 24), n=12, seed=0):
    """Voronoi cells as neurons; raw is dark on cell contacts, bright inside, plus noise."""
    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, shape, size=(n, 3))
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    labels = np.argmin(((grid[..., None, :] - seeds) ** 2).sum(-1), -1).astype(np.uint64) + 1
    from models.volumetric.targets import boundary_map

    boundary = boundary_map(labels)[0]
    raw = 190 - 110 * boundary + rng.normal(0, 12, shape)
    return np.clip(raw, 0, 255).astype(np.uint8), labels


def test_one_training_step_lowers_the_loss():
    raw, labels = synthetic_pair()
    cfg = TrainConfig.from_dict({"model": TINY, "crop_shape": [16, 16, 16], "batch_size": 2})
    torch.manual_seed(0)
    model = make_model(cfg, raw)
    x, y, m = Sampler(raw, labels, model, cfg).sample(np.random.default_rng(0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    before = masked_loss(cfg.loss, model(x), y, m)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = masked_loss(cfg.loss, model(x), y, m)
    assert after.item() < before.item()


@pytest.mark.parametrize("loss", ["bce", "balanced_bce", "bce_dice", "bce_dice_boundary"])
def test_losses_reward_the_right_answer(loss):
    target = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    mask = torch.ones_like(target)
    good = masked_loss(loss, torch.tensor([[4.0, -4.0, -4.0, -4.0]]), target, mask)
    bad = masked_loss(loss, torch.tensor([[-4.0, 4.0, 4.0, 4.0]]), target, mask)
    masked = masked_loss(
        loss, torch.tensor([[4.0, -4.0, -4.0, 9.0]]), target, torch.tensor([[1.0, 1, 1, 0]])
    )
    assert float(good) < float(bad)
    assert float(masked) == pytest.approx(float(good), rel=1e-4, abs=1e-4) or "dice" in loss


def test_boundary_dice_weighs_the_minority_class_of_affinities():
    """Affinities are mostly 1: missing the one boundary face costs plain Dice almost nothing
    but costs the boundary-class Dice nearly all of it."""
    target = torch.tensor([[1.0] * 9 + [0.0]])
    mask = torch.ones_like(target)
    perfect = torch.tensor([[6.0] * 9 + [-6.0]])
    all_same = torch.full_like(target, 6.0)  # the boundary face missed
    for loss, least in (("bce_dice", 0.0), ("bce_dice_boundary", 0.9)):
        gap = masked_loss(loss, all_same, target, mask) - masked_loss(loss, perfect, target, mask)
        assert float(gap) > least, loss
    gap = masked_loss("bce_dice", all_same, target, mask) - masked_loss(
        "bce_dice", perfect, target, mask
    )
    assert float(gap) < 0.9


def test_train_run_checkpoints_plots_and_resumes(tmp_path):
    raw, labels = synthetic_pair()
    val_raw, val_labels = synthetic_pair((8, 24, 24), seed=1)
    out = tmp_path / "run.pt"
    cfg = {"model": TINY, "crop_shape": [16, 16, 16], "iterations": 4, "val_every": 2,
           "checkpoint_every": 2, "lr": 5e-3, "threads": 1}  # fmt: skip
    first = train(raw, labels, out, cfg, val_raw, val_labels, progress=False, log=lambda m: None)
    assert first["iterations"] == 4
    hist = first["history"]
    assert len(hist["loss"]) == 4 and [v["iteration"] for v in hist["val"]] == [2, 4]
    assert 0.0 <= hist["val"][-1]["f1"] <= 1.0 and 0.0 < hist["val"][-1]["ap"] <= 1.0
    plots = tmp_path / "run_plots"
    assert (plots / "loss.png").stat().st_size > 1000
    assert (plots / "val_slice.png").stat().st_size > 1000
    assert read_checkpoint(out)["train_state"]["iteration"] == 4
    with pytest.raises(InputError, match="resume"):
        train(raw, labels, out, cfg, progress=False)
    second = train(
        raw,
        labels,
        out,
        {"iterations": 6},
        val_raw,
        val_labels,
        resume=True,
        progress=False,
        log=lambda m: None,
    )
    assert second["iterations"] == 6 and len(second["history"]["loss"]) == 6
    assert second["history"]["loss"][:4] == hist["loss"]
    exported = tmp_path / "model.pt"
    export_model(out, exported, {"name": "toy"})
    payload = read_checkpoint(exported)
    assert payload["train_state"] is None and payload["metadata"]["iterations"] == 6
    model = load_checkpoint(exported)
    assert model.spec.normalization["mean"] == pytest.approx(float(raw.mean()), abs=5.0)


def test_affinity_training_target():
    raw, labels = synthetic_pair()
    cfg = TrainConfig.from_dict(
        {
            "model": TINY,
            "target": "affinity",
            "offsets": [[-1, 0, 0], [0, -1, 0], [0, 0, -3]],
            "crop_shape": [8, 8, 8],
        }  # fmt: skip
    )
    model = make_model(cfg, raw)
    assert model.spec.output == "affinity" and model.spec.out_channels == 3
    x, y, m = Sampler(raw, labels, model, cfg).sample(np.random.default_rng(0))
    assert y.shape == m.shape == (2, 3, 8, 8, 8)


def test_bad_training_input():
    raw, labels = synthetic_pair((8, 8, 8))
    with pytest.raises(InputError, match="differ in shape"):
        train(raw, labels[:4], "unused.pt", {"model": TINY}, progress=False)
    with pytest.raises(ConfigError, match="unknown training option"):
        TrainConfig.from_dict({"iters": 3})
    with pytest.raises(ConfigError, match="multiple"):
        cfg = TrainConfig.from_dict({"model": TINY, "crop_shape": [5, 8, 8]})
        Sampler(raw, labels, make_model(cfg, raw), cfg)
    with pytest.raises(InputError, match="smaller than a crop"):
        cfg = TrainConfig.from_dict({"model": TINY, "crop_shape": [16, 16, 16]})
        Sampler(raw, labels, make_model(cfg, raw), cfg)


def _h5(path, raw, labels):
    import h5py

    with h5py.File(path, "w") as f:
        for name, data in (("volumes/raw", raw), ("volumes/labels/neuron_ids", labels)):
            d = f.create_dataset(name, data=data)
            d.attrs["resolution"] = [10, 10, 10]
            d.attrs["offset"] = [0, 0, 0]


def test_cli_trains_and_refuses_mismatched_volumes(tmp_path, capsys):
    from workflows.cli.app import main

    raw, labels = synthetic_pair((24, 16, 16))
    good, bad = tmp_path / "good.h5", tmp_path / "bad.h5"
    _h5(good, raw, labels)
    _h5(bad, raw, labels[:, :12])
    cfg = tmp_path / "train.yaml"
    cfg.write_text("model: {ndim: 3, widths: [4, 8]}\ncrop_shape: [8, 8, 8]\nthreads: 1\n")
    out = tmp_path / "m.pt"
    common = ["--config", str(cfg), "--out", str(out), "--no-progress"]
    code = main(["train", "boundary", "--raw", f"{bad}/volumes/raw", "--labels",
                 f"{bad}/volumes/labels/neuron_ids", *common])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "shape (24, 16, 16)" in err and "(24, 12, 16)" in err
    code = main(["train", "boundary", "--raw", f"{good}/volumes/raw", "--labels",
                 f"{good}/volumes/labels/neuron_ids", "--iterations", "2", "--val-sections", "8",
                 *common])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["iterations"] == 2 and summary["validation"]["iteration"] == 2
    meta = read_checkpoint(out)["metadata"]
    assert meta["train_z"] == [0, 16] and meta["val_z"] == [16, 24]
    shipped = tmp_path / "shipped.pt"
    assert main(["train", "export", "--checkpoint", str(out), "--out", str(shipped)]) == 0
    capsys.readouterr()
    assert load_checkpoint(shipped).metadata["iterations"] == 2
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("- a list\n")
    code = main(["train", "boundary", "--raw", f"{good}/volumes/raw", "--labels",
                 f"{good}/volumes/labels/neuron_ids", "--config", str(bad_cfg),
                 "--out", str(tmp_path / "x.pt")])  # fmt: skip
    assert code == 2 and "mapping" in capsys.readouterr().err
