"""2D task training runs (``petaseg train2d``) and one-image prediction (``petaseg predict2d``).

A run reads a data preset's training sections (``data2d``: ``isbi``, ``vnc`` or ``fib``, or
their URLs overridden), trains a ``models.train2d`` recipe on random tiles or crops, scores the
model on the preset's held-out sections, and writes the checkpoint plus ``<out>.metrics.json``.
``models`` (and torch) load when a run starts, so importing this module stays light.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import InputError
from pipeline.io.urls import refuse_overwriting
from workflows.training.data2d import instance_data, preset, semantic_data

if TYPE_CHECKING:
    from torch import nn

    from models.train2d.data import InstanceSections


@dataclass(frozen=True)
class Train2dRun:
    """What every 2D training run is given: the data preset (and URLs overriding its files),
    the checkpoint to write, and the optimisation (``petaseg train2d`` batches: semantic 4,
    localize 16, detect and instance 2)."""

    data: str
    out: Path
    raw: str | None = None
    labels: str | None = None
    iterations: int = 300
    batch: int = 4
    lr: float = 1e-3
    seed: int = 0
    threads: int = 1
    scale: int | None = None  # downsampling of y, x; None: the preset's (semantic: 1)
    quiet: bool = False

    def preset_scale(self) -> int:
        """``scale``, or the preset's default downsampling for object tasks."""
        return preset(self.data).scale if self.scale is None else self.scale

    def instances(
        self, split: str, scale: int, objects: tuple[str, ...] | None = None
    ) -> InstanceSections:
        """The objects of the ``train`` or ``val`` sections (see ``data2d.instance_data``)."""
        return instance_data(self.data, split, self.raw, self.labels, scale, objects=objects)


def _setup(threads: int, seed: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))
    torch.manual_seed(seed)


def _logger(quiet: bool) -> Callable[[int, dict], None] | None:
    if quiet:
        return None
    return lambda it, d: print(
        f"iteration {it}: " + " ".join(f"{k}={v:.4f}" for k, v in d.items()), flush=True
    )


def _finish(
    model: nn.Module, run: Train2dRun, scale: int, options: dict, history: dict, scores: dict
) -> dict:
    """Save the checkpoint and ``<out>.metrics.json``, their metadata the data, the scale, the
    task's ``options`` and the batch; return the run's summary."""
    from models.checkpoint import save_checkpoint

    refuse_overwriting([str(run.out), f"{run.out}.metrics.json"], [run.raw, run.labels], "train2d")
    metadata = {"data": run.data, "scale": scale, **options, "batch": run.batch}
    summary = {
        "out": str(run.out),
        "task": model.task,
        "iterations": history["iterations"],
        "train_seconds": round(history["seconds"], 1),
        "train_images_per_s": round(history["images_per_s"], 2),
        "final_loss": round(history["loss"][-1], 4),
        "validation": scores,
        **metadata,
    }
    save_checkpoint(run.out, model, {**metadata, "validation": scores})
    Path(str(run.out) + ".metrics.json").write_text(json.dumps(summary, indent=1, default=float))
    return summary


def run_semantic(
    run: Train2dRun, arch: str = "unet", up: str = "transposed", tile: int = 128
) -> dict:
    """Per-pixel classes with a U-Net or FCN (``arch``, decoder upsampling ``up``)."""
    from models.train2d.recipes import evaluate_semantic, train_semantic

    _setup(run.threads, run.seed)
    scale = 1 if run.scale is None else run.scale
    images, maps, classes = semantic_data(run.data, "train", run.raw, run.labels, scale)
    log = _logger(run.quiet)
    model, hist = train_semantic(
        images, maps, classes, arch, up, run.iterations, run.batch, tile, run.lr, run.seed, log
    )
    vi, vm, _ = semantic_data(run.data, "val", run.raw, run.labels, scale)
    scores = evaluate_semantic(model, vi, vm)
    return _finish(model, run, scale, {"arch": arch, "up": up, "tile": tile}, hist, scores)


def run_localize(run: Train2dRun, crop: int = 64) -> dict:
    """One object per ``crop``-pixel crop: its class and box (FIB crops centred on it)."""
    from models.train2d.data import localization_crops
    from models.train2d.recipes import evaluate_localizer, train_localizer

    _setup(run.threads, run.seed)
    scale = run.preset_scale()
    centered = run.data == "fib"
    rng = np.random.default_rng(seed=run.seed)
    train = localization_crops(run.instances("train", scale), crop, rng, centered)
    val = localization_crops(run.instances("val", scale), crop, rng, centered)
    log = _logger(run.quiet)
    model, hist = train_localizer(train, run.iterations, run.batch, run.lr, run.seed, log)
    scores = evaluate_localizer(model, val)
    options = {"crop": crop, "train_crops": len(train)}
    return _finish(model, run, scale, options, hist, scores)


def run_detect(run: Train2dRun, kind: str = "two_stage", tile: int = 256) -> dict:
    """Object boxes (``kind`` two_stage or grid), or instances with masks (``instance``)."""
    from models.train2d.recipes import build_detection_model, evaluate_detection, train_detection

    _setup(run.threads, run.seed)
    scale = run.preset_scale()
    masks = kind == "instance"
    objects = ("mitochondria",) if masks and run.data == "vnc" else None  # VNC: mitochondria
    train = run.instances("train", scale, objects)
    model = build_detection_model(kind, train)
    log = _logger(run.quiet)
    hist = train_detection(
        model, train, run.iterations, run.batch, tile, run.lr, run.seed, masks, log=log
    )
    scores = evaluate_detection(model, run.instances("val", scale, objects), masks)
    return _finish(model, run, scale, {"kind": kind, "tile": tile}, hist, scores)


def _image_stem(image: str, section: int) -> str:
    """``<file name without suffix>_z<section>`` (for a volume URL: the file, not the dataset)."""
    parts = image.rstrip("/").split("/")
    base = next((p for p in reversed(parts) if "." in p), parts[-1])
    return f"{base.split('.')[0] or 'image'}_z{section}"


def _write_labels(pred: dict, out: Path, stem: str) -> dict[str, Path]:
    """The overlay and JSON paths, and the class / instance PNGs the prediction has, written."""
    from workflows.training.data2d import write_png

    files = {"overlay": out / f"{stem}_overlay.png", "json": out / f"{stem}_prediction.json"}
    if "classmap" in pred:
        files["classes"] = out / f"{stem}_classes.png"
        write_png(files["classes"], pred["classmap"])
    if "instances" in pred:
        files["instances"] = out / f"{stem}_instances.png"
        write_png(files["instances"], pred["instances"].astype(np.uint16))
    return files


def run_predict(
    model_path: Path,
    image: str,
    out: Path,
    *,
    section: int = 0,
    scale: int | None = None,
    score: float = 0.5,
    threads: int = 1,
) -> dict:
    """Predict one 2D image (a file, or ``section`` of a volume URL), downsampled by ``scale``
    (default: the model's), with a ``train2d`` checkpoint, keeping detections of at least
    ``score``; write the prediction (JSON, class or instance PNG) and a PNG overlay."""
    from models.checkpoint import TASK_MODELS, load_checkpoint
    from models.train2d.data import downsample
    from models.train2d.overlay import save_overlay
    from models.train2d.predict import predict_image, summary
    from workflows.training.data2d import read_sections, write_json

    _setup(threads, 0)
    model = load_checkpoint(model_path, family=TASK_MODELS)
    scale = int(model.metadata.get("scale", 1)) if scale is None else scale
    img = read_sections(image, section, section + 1)[0]
    if img.dtype != np.uint8:
        raise InputError(f"{image}: raw data must be uint8 (got {img.dtype})")
    img = downsample(img[None], scale)[0]
    pred = predict_image(model, img, score)
    stem = _image_stem(image, section)
    out.mkdir(parents=True, exist_ok=True)
    files = _write_labels(pred, out, stem)
    s = summary(pred)
    s.update(model=str(model_path), image=image, section=section, scale=scale)
    s["files"] = {k: str(v) for k, v in files.items()}
    write_json(files["json"], s)
    save_overlay(files["overlay"], img, pred, title=f"{model.task}: {stem}")
    return s
