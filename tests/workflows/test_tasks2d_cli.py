"""`petaseg train2d` / `petaseg predict2d` end to end on real sections, and 2D checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.checkpoint import TASK_MODELS, load_checkpoint, save_checkpoint
from models.errors import CheckpointError
from models.tasks.detect_grid import build_grid_detector
from tests.conftest import shared_file
from workflows.cli.app import main

torch.set_num_threads(1)


def needs_coco() -> None:
    """Skip (with the fix) where the COCO evaluation packages are not installed."""
    for name in ("torchmetrics", "faster_coco_eval"):
        pytest.importorskip(name, reason="COCO mAP needs torchmetrics + faster-coco-eval")


def test_train2d_semantic_then_predict2d(tmp_path, capsys):
    shared_file("isbi2012/isbi2012_train.h5")
    out = tmp_path / "sem.pt"
    rc = main(
        [
            "train2d",
            "semantic",
            "--data",
            "isbi",
            "--out",
            str(out),
            "--iterations",
            "3",
            "--batch",
            "2",
            "--tile",
            "64",
            "--arch",
            "fcn16s",
            "--up",
            "interp_conv",
            "--quiet",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["iterations"] == 3 and 0 <= summary["validation"]["miou"] <= 1
    assert json.loads((tmp_path / "sem.pt.metrics.json").read_text())["arch"] == "fcn16s"
    raw = str(shared_file("isbi2012/isbi2012_train.h5")) + "/volumes/raw"
    rc = main(
        [
            "predict2d",
            "--model",
            str(out),
            "--image",
            raw,
            "--section",
            "21",
            "--out",
            str(tmp_path / "p"),
        ]
    )
    assert rc == 0
    files = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["files"]
    from skimage import io

    classes = io.imread(files["classes"])
    assert classes.shape == (512, 512) and set(np.unique(classes)) <= {0, 1}
    overlay = io.imread(files["overlay"])
    assert overlay.ndim == 3 and overlay.shape[0] > 100


def test_train2d_detect_grid_then_predict2d_on_a_png(tmp_path, capsys):
    needs_coco()
    shared_file("drosophila_vnc_sstem/vnc_stack1.h5")
    out = tmp_path / "grid.pt"
    rc = main(
        [
            "train2d",
            "detect",
            "--data",
            "vnc",
            "--model",
            "grid",
            "--out",
            str(out),
            "--iterations",
            "2",
            "--tile",
            "128",
            "--quiet",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["task"] == "grid_detect" and "box_map50" in summary["validation"]
    from skimage import io

    png = tmp_path / "tile.png"
    io.imsave(
        png,
        np.random.default_rng(0).integers(0, 255, (150, 130), dtype=np.uint8),
        check_contrast=False,
    )
    rc = main(
        [
            "predict2d",
            "--model",
            str(out),
            "--image",
            str(png),
            "--scale",
            "1",
            "--score",
            "0.0",
            "--out",
            str(tmp_path / "p"),
        ]
    )
    assert rc == 0
    pred = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert pred["task"] == "grid_detect" and isinstance(pred["detections"], list)
    assert (tmp_path / "p" / "tile_z0_overlay.png").is_file()


def _train2d(task: str, out, *args: str) -> int:
    return main(["train2d", task, "--out", str(out), "--iterations", "2", "--quiet", *args])


def test_train2d_localize_detect_two_stage_and_instance(tmp_path, capsys):
    """Every train2d task writes a checkpoint that loads as its task, with held-out scores."""
    needs_coco()
    shared_file("drosophila_vnc_sstem/vnc_stack1.h5")
    runs = [
        ("localize", "localize", ["--data", "vnc", "--batch", "4"], ("acc", "iou")),
        ("detect", "detect", ["--model", "two_stage", "--tile", "128"], ("box_map50",)),
        ("instance", "instance", ["--tile", "128"], ("mask_map50", "box_map50")),
    ]
    for name, task, args, keys in runs:
        out = tmp_path / f"{name}.pt"
        assert _train2d(task, out, *args) == 0, name
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["iterations"] == 2 and np.isfinite(summary["final_loss"])
        assert all(0 <= summary["validation"][k] <= 1 for k in keys), summary["validation"]
        assert load_checkpoint(out, family=TASK_MODELS).task == summary["task"]
    raw = str(shared_file("drosophila_vnc_sstem/vnc_stack1.h5")) + "/volumes/raw"
    rc = main(
        ["predict2d", "--model", str(tmp_path / "instance.pt"), "--image", raw, "--section", "18"]
        + ["--score", "0.0", "--out", str(tmp_path / "p")]
    )
    assert rc == 0
    pred = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    from skimage import io

    assert pred["task"] == "instance" and pred["scale"] == 2
    assert io.imread(pred["files"]["instances"]).shape == (512, 512)
    assert io.imread(pred["files"]["overlay"]).ndim == 3


def test_cli_errors_are_messages(tmp_path, capsys):
    assert main(["train2d", "semantic", "--data", "cremi", "--out", str(tmp_path / "x.pt")]) == 2
    assert "--data 'cremi' is unknown; use one of" in capsys.readouterr().err
    assert _train2d("detect", tmp_path / "y.pt", "--model", "yolo") == 2
    assert "'yolo' is unknown; use one of ['grid', 'two_stage']" in capsys.readouterr().err
    assert _train2d("instance", tmp_path / "z.pt", "--model", "grid") == 2
    assert "use one of ['mask_rcnn']" in capsys.readouterr().err
    assert not (tmp_path / "y.pt").exists() and not (tmp_path / "z.pt").exists()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["predict2d", "--model", str(bad), "--image", "x.png"]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_grid_detector(
        2, class_names=["a", "b"], encoder={"widths": [4, 8, 8, 16]}, anchors=[[8, 8], [20, 12]]
    )
    save_checkpoint(tmp_path / "g.pt", model, {"scale": 2})
    loaded = load_checkpoint(tmp_path / "g.pt", family=TASK_MODELS)
    assert loaded.metadata["scale"] == 2 and loaded.config == model.config
    x = [torch.rand(1, 64, 64)]
    model.eval()
    raw_a, _ = model._raw(model._batch(x))
    raw_b, _ = loaded._raw(loaded._batch(x))
    assert torch.equal(raw_a, raw_b)
    with pytest.raises(CheckpointError, match="holds a 'grid_detect' model"):
        load_checkpoint(tmp_path / "g.pt", architecture="semantic")
    torch.save({"format": "something-else"}, tmp_path / "o.pt")
    with pytest.raises(CheckpointError, match="not a 2D task checkpoint"):
        load_checkpoint(tmp_path / "o.pt", family=TASK_MODELS)


def test_predict_image_handles_every_task_and_odd_sizes(tmp_path):
    from models.errors import InputError
    from models.tasks.instance import build_mask_rcnn
    from models.tasks.localize import Localizer
    from models.tasks.semantic import SemanticNet
    from models.tasks.sliding_window import PatchClassifier
    from models.train2d.overlay import save_overlay
    from models.train2d.predict import predict_image, summary

    torch.manual_seed(0)
    image = np.random.default_rng(0).integers(0, 255, (50, 37), dtype=np.uint8)
    small = {"widths": [4, 8, 8, 8, 8]}
    models = [
        SemanticNet(["a", "b"], "fcn8s", "nearest", encoder={"widths": [4, 4, 8, 8, 8, 8]}),
        PatchClassifier(["a", "b"], widths=(4, 4, 4), hidden=8),
        Localizer(["a", "b"], encoder={"widths": [4, 8]}),
        build_mask_rcnn(1, encoder=small, score_thresh=0.0),
    ]
    for model in models:
        model.eval()
        pred = predict_image(model, image, score_thresh=0.0)
        json.dumps(summary(pred))
        if "classmap" in pred:
            assert pred["classmap"].shape == (50, 37)
        if "box" in pred:
            assert len(pred["box"]) == 4
        if model.task == "instance":
            assert pred["instances"].shape == (50, 37)
        save_overlay(tmp_path / f"{model.task}.png", image, pred)
        assert (tmp_path / f"{model.task}.png").stat().st_size > 1000
    with pytest.raises(InputError, match="grayscale"):
        predict_image(models[0], np.zeros((8, 8, 3), np.uint8))
