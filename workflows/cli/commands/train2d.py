"""``petaseg train2d {semantic,localize,detect,instance}`` and ``petaseg predict2d``.

Training reads a data preset (``--data isbi|vnc|fib``, see pipeline.data2d_io: its training
sections only), trains on random tiles, evaluates on the preset's held-out sections, and writes
the checkpoint plus ``<out>.metrics.json``. ``predict2d`` writes the prediction (JSON, class or
instance PNG) and a PNG overlay for a person to look at.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from pipeline.errors import InputError

DATA_HELP = "data preset: isbi (membranes), vnc (5 classes; mitochondria/synapse objects), fib (neuron profiles)"


def _setup(threads: int, seed: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))
    torch.manual_seed(seed)


def _logger(quiet: bool):
    if quiet:
        return None
    return lambda it, d: print(
        f"iteration {it}: " + " ".join(f"{k}={v:.4f}" for k, v in d.items()), flush=True
    )


def _finish(model, out: Path, metadata: dict, history: dict, scores: dict) -> dict:
    from models.checkpoint import save_checkpoint

    summary = {
        "out": str(out),
        "task": model.task,
        "iterations": history["iterations"],
        "train_seconds": round(history["seconds"], 1),
        "train_images_per_s": round(history["images_per_s"], 2),
        "final_loss": round(history["loss"][-1], 4),
        "validation": scores,
        **metadata,
    }
    save_checkpoint(out, model, {**metadata, "validation": scores})
    Path(str(out) + ".metrics.json").write_text(json.dumps(summary, indent=1, default=float))
    return summary


def run_semantic(
    data,
    out,
    raw=None,
    labels=None,
    arch="unet",
    up="transposed",
    iterations=300,
    batch=4,
    tile=128,
    lr=1e-3,
    seed=0,
    threads=1,
    scale=1,
    quiet=False,
) -> dict:
    from models.train2d.recipes import evaluate_semantic, train_semantic
    from workflows.training.data2d import semantic_data

    _setup(threads, seed)
    images, maps, classes = semantic_data(data, "train", raw, labels, scale)
    model, hist = train_semantic(
        images, maps, classes, arch, up, iterations, batch, tile, lr, seed, _logger(quiet)
    )
    vi, vm, _ = semantic_data(data, "val", raw, labels, scale)
    scores = evaluate_semantic(model, vi, vm)
    meta = {"data": data, "scale": scale, "arch": arch, "up": up, "tile": tile, "batch": batch}
    return _finish(model, out, meta, hist, scores)


def run_localize(
    data,
    out,
    raw=None,
    labels=None,
    crop=64,
    iterations=300,
    batch=16,
    lr=1e-3,
    seed=0,
    threads=1,
    scale=None,
    quiet=False,
) -> dict:
    from models.train2d.data import localization_crops
    from models.train2d.recipes import evaluate_localizer, train_localizer
    from workflows.training.data2d import instance_data, preset

    _setup(threads, seed)
    scale = preset(data).scale if scale is None else scale
    centered = data == "fib"
    rng = np.random.default_rng(seed)
    train = localization_crops(
        instance_data(data, "train", raw, labels, scale), crop, rng, centered
    )
    val = localization_crops(instance_data(data, "val", raw, labels, scale), crop, rng, centered)
    model, hist = train_localizer(train, iterations, batch, lr, seed, _logger(quiet))
    scores = evaluate_localizer(model, val)
    meta = {"data": data, "scale": scale, "crop": crop, "train_crops": len(train), "batch": batch}
    return _finish(model, out, meta, hist, scores)


def run_detect(
    data,
    out,
    raw=None,
    labels=None,
    kind="two_stage",
    iterations=300,
    batch=2,
    tile=256,
    lr=1e-3,
    seed=0,
    threads=1,
    scale=None,
    quiet=False,
) -> dict:
    from models.train2d.recipes import build_detection_model, evaluate_detection, train_detection
    from workflows.training.data2d import instance_data, preset

    _setup(threads, seed)
    scale = preset(data).scale if scale is None else scale
    masks = kind == "instance"
    objects = ("mitochondria",) if masks and data == "vnc" else None  # VNC instances: mitochondria
    train = instance_data(data, "train", raw, labels, scale, objects=objects)
    model = build_detection_model(kind, train)
    hist = train_detection(
        model, train, iterations, batch, tile, lr, seed, masks, log=_logger(quiet)
    )
    val = instance_data(data, "val", raw, labels, scale, objects=objects)
    scores = evaluate_detection(model, val, masks)
    meta = {"data": data, "scale": scale, "kind": kind, "tile": tile, "batch": batch}
    return _finish(model, out, meta, hist, scores)


def run_predict(
    model_path: Path,
    image: str,
    out: Path,
    section: int = 0,
    score: float = 0.5,
    scale: int | None = None,
    threads: int = 1,
) -> dict:
    from models.checkpoint import TASK_MODELS, load_checkpoint
    from models.train2d.data import downsample
    from models.train2d.overlay import save_overlay
    from models.train2d.predict import predict_image, summary
    from workflows.training.data2d import read_sections, write_json, write_png

    _setup(threads, 0)
    model = load_checkpoint(model_path, family=TASK_MODELS)
    scale = int(model.metadata.get("scale", 1)) if scale is None else scale
    img = read_sections(image, section, section + 1)[0]
    if img.dtype != np.uint8:
        raise InputError(f"{image}: raw data must be uint8 (got {img.dtype})")
    img = downsample(img[None], scale)[0]
    pred = predict_image(model, img, score)
    parts = image.rstrip("/").split("/")
    base = next((p for p in reversed(parts) if "." in p), parts[-1])  # the file, not the dataset
    stem = f"{base.split('.')[0] or 'image'}_z{section}"
    out.mkdir(parents=True, exist_ok=True)
    files = {"overlay": out / f"{stem}_overlay.png", "json": out / f"{stem}_prediction.json"}
    if "classmap" in pred:
        files["classes"] = out / f"{stem}_classes.png"
        write_png(files["classes"], pred["classmap"])
    if "instances" in pred:
        files["instances"] = out / f"{stem}_instances.png"
        write_png(files["instances"], pred["instances"].astype(np.uint16))
    s = summary(pred)
    s.update(
        model=str(model_path),
        image=image,
        section=section,
        scale=scale,
        files={k: str(v) for k, v in files.items()},
    )
    write_json(files["json"], s)
    save_overlay(files["overlay"], img, pred, title=f"{model.task}: {stem}")
    return s


Out = Annotated[Path, typer.Option(help="checkpoint to write (.pt)")]
Data = Annotated[str, typer.Option(help=DATA_HELP)]
Raw = Annotated[
    str | None, typer.Option(help="override the preset's raw URL (same sections are used)")
]
Labels = Annotated[str | None, typer.Option(help="override the preset's labels URL")]
Scale = Annotated[int | None, typer.Option(help="downsampling (default: the preset's)")]
DETECTORS = {"two_stage": "two_stage", "grid": "grid"}  # --model -> detection model kind
INSTANCE_MODELS = {"mask_rcnn": "instance"}


def semantic(
    out: Out,
    data: Data = "isbi",
    raw: Raw = None,
    labels: Labels = None,
    arch: Annotated[str, typer.Option(help="unet, fcn32s, fcn16s or fcn8s")] = "unet",
    up: Annotated[
        str, typer.Option(help="nearest, bed_of_nails, max_unpool, transposed, interp_conv")
    ] = "transposed",
    iterations: int = 300,
    batch: int = 4,
    tile: Annotated[int, typer.Option(help="square training tile (pixels)")] = 128,
    lr: float = 1e-3,
    seed: int = 0,
    threads: Annotated[int, typer.Option(help="torch CPU threads")] = 1,
    scale: Annotated[int, typer.Option(help="downsample sections by this factor first")] = 1,
    quiet: bool = False,
) -> None:
    """Per-pixel classes with a U-Net or FCN (softmax); evaluated on the held-out sections."""
    print(
        json.dumps(
            run_semantic(
                data,
                out,
                raw,
                labels,
                arch,
                up,
                iterations,
                batch,
                tile,
                lr,
                seed,
                threads,
                scale,
                quiet,
            ),
            default=float,
        )
    )


def localize(
    out: Out,
    data: Data = "vnc",
    raw: Raw = None,
    labels: Labels = None,
    crop: Annotated[
        int, typer.Option(help="crop size around one object (pixels, after --scale)")
    ] = 64,
    iterations: int = 300,
    batch: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    threads: int = 1,
    scale: Scale = None,
    quiet: bool = False,
) -> None:
    """One object per crop: class + box (cross entropy + smooth-L1)."""
    print(
        json.dumps(
            run_localize(
                data, out, raw, labels, crop, iterations, batch, lr, seed, threads, scale, quiet
            ),
            default=float,
        )
    )


def _train_detector(
    kinds: dict[str, str], model: str, data: str, out: Path, raw, labels, options: tuple
) -> None:
    """``--model`` checked against ``kinds`` (its name -> the detection kind), then trained;
    ``options`` are ``run_detect``'s from ``iterations`` on."""
    if model not in kinds:
        raise InputError(f"--model {model!r} is unknown; use one of {sorted(kinds)}")
    print(json.dumps(run_detect(data, out, raw, labels, kinds[model], *options), default=float))


def detect(
    out: Out,
    data: Data = "vnc",
    raw: Raw = None,
    labels: Labels = None,
    model: Annotated[
        str, typer.Option(help="two_stage (Faster R-CNN) or grid (single shot)")
    ] = "two_stage",
    iterations: int = 300,
    batch: int = 2,
    tile: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    threads: int = 1,
    scale: Scale = None,
    quiet: bool = False,
) -> None:
    """Object boxes: two-stage (Faster R-CNN) or single-shot grid detector; COCO mAP."""
    options = (iterations, batch, tile, lr, seed, threads, scale, quiet)
    _train_detector(DETECTORS, model, data, out, raw, labels, options)


def instance(
    out: Out,
    data: Data = "vnc",
    raw: Raw = None,
    labels: Labels = None,
    model: Annotated[str, typer.Option(help="mask_rcnn (the instance model)")] = "mask_rcnn",
    iterations: int = 300,
    batch: int = 2,
    tile: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    threads: int = 1,
    scale: Scale = None,
    quiet: bool = False,
) -> None:
    """Mask R-CNN on our encoder + FPN (instances); COCO box and mask mAP on held-out sections."""
    options = (iterations, batch, tile, lr, seed, threads, scale, quiet)
    _train_detector(INSTANCE_MODELS, model, data, out, raw, labels, options)


def predict2d(
    model: Annotated[Path, typer.Option(help="checkpoint from `petaseg train2d`")],
    image: Annotated[str, typer.Option(help="a PNG/TIFF image, or a volume URL (with --section)")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("predictions2d"),
    section: Annotated[int, typer.Option(help="z-section of a volume URL")] = 0,
    score: Annotated[float, typer.Option(help="keep detections with at least this score")] = 0.5,
    scale: Annotated[int | None, typer.Option(help="downsampling (default: the model's)")] = None,
    threads: int = 1,
) -> None:
    """Predict one 2D image: writes the prediction (JSON, PNG labels) and a PNG overlay."""
    print(json.dumps(run_predict(model, image, out, section, score, scale, threads), default=float))


group = typer.Typer(help="Train 2D task models on EM sections.", no_args_is_help=True)
group.command("semantic")(semantic)
group.command("localize")(localize)
group.command("detect")(detect)
group.command("instance")(instance)
