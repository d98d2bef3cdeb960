"""``petaseg train2d {semantic,localize,detect,instance}`` and ``petaseg predict2d``.

Training reads a data preset (``--data isbi|vnc|fib``, see pipeline.data2d_io: its training
sections only), trains on random tiles, evaluates on the preset's held-out sections, and writes
the checkpoint plus ``<out>.metrics.json``. ``predict2d`` writes the prediction (JSON, class or
instance PNG) and a PNG overlay for a person to look at.
"""

from __future__ import annotations

import json
from pathlib import Path

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


def register(app: typer.Typer) -> None:
    t2 = typer.Typer(help="Train 2D task models on EM sections.", no_args_is_help=True)
    common = dict(
        raw=typer.Option(None, help="override the preset's raw URL (same sections are used)"),
        labels=typer.Option(None, help="override the preset's labels URL"),
    )

    @t2.command("semantic")
    def semantic(
        out: Path = typer.Option(..., help="checkpoint to write (.pt)"),
        data: str = typer.Option("isbi", help=DATA_HELP),
        raw: str | None = common["raw"],
        labels: str | None = common["labels"],
        arch: str = typer.Option("unet", help="unet, fcn32s, fcn16s or fcn8s"),
        up: str = typer.Option(
            "transposed", help="nearest, bed_of_nails, max_unpool, transposed, interp_conv"
        ),
        iterations: int = typer.Option(300),
        batch: int = typer.Option(4),
        tile: int = typer.Option(128, help="square training tile (pixels)"),
        lr: float = typer.Option(1e-3),
        seed: int = typer.Option(0),
        threads: int = typer.Option(1, help="torch CPU threads"),
        scale: int = typer.Option(1, help="downsample sections by this factor first"),
        quiet: bool = typer.Option(False),
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

    @t2.command("localize")
    def localize(
        out: Path = typer.Option(..., help="checkpoint to write (.pt)"),
        data: str = typer.Option("vnc", help=DATA_HELP),
        raw: str | None = common["raw"],
        labels: str | None = common["labels"],
        crop: int = typer.Option(64, help="crop size around one object (pixels, after --scale)"),
        iterations: int = typer.Option(300),
        batch: int = typer.Option(16),
        lr: float = typer.Option(1e-3),
        seed: int = typer.Option(0),
        threads: int = typer.Option(1),
        scale: int | None = typer.Option(None, help="downsampling (default: the preset's)"),
        quiet: bool = typer.Option(False),
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

    def _detect_command(instance: bool):
        def command(
            out: Path = typer.Option(..., help="checkpoint to write (.pt)"),
            data: str = typer.Option("vnc", help=DATA_HELP),
            raw: str | None = common["raw"],
            labels: str | None = common["labels"],
            model: str = typer.Option(
                "mask_rcnn" if instance else "two_stage",
                help="mask_rcnn (the instance model)"
                if instance
                else "two_stage (Faster R-CNN) or grid (single shot)",
            ),
            iterations: int = typer.Option(300),
            batch: int = typer.Option(2),
            tile: int = typer.Option(256),
            lr: float = typer.Option(1e-3),
            seed: int = typer.Option(0),
            threads: int = typer.Option(1),
            scale: int | None = typer.Option(None, help="downsampling (default: the preset's)"),
            quiet: bool = typer.Option(False),
        ) -> None:
            choices = (
                {"mask_rcnn": "instance"} if instance else {m: m for m in ("two_stage", "grid")}
            )
            if model not in choices:
                raise InputError(f"--model {model!r} is unknown; use one of {sorted(choices)}")
            kind = choices[model]
            print(
                json.dumps(
                    run_detect(
                        data,
                        out,
                        raw,
                        labels,
                        kind,
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

        command.__doc__ = (
            "Mask R-CNN on our encoder + FPN (instances); COCO box and mask mAP on held-out sections."
            if instance
            else "Object boxes: two-stage (Faster R-CNN) or single-shot grid detector; COCO mAP."
        )
        return command

    t2.command("detect")(_detect_command(False))
    t2.command("instance")(_detect_command(True))
    app.add_typer(t2, name="train2d")

    @app.command("predict2d")
    def predict2d(
        model: Path = typer.Option(..., help="checkpoint from `petaseg train2d`"),
        image: str = typer.Option(..., help="a PNG/TIFF image, or a volume URL (with --section)"),
        out: Path = typer.Option(Path("predictions2d"), help="output folder"),
        section: int = typer.Option(0, help="z-section of a volume URL"),
        score: float = typer.Option(0.5, help="keep detections with at least this score"),
        scale: int | None = typer.Option(None, help="downsampling (default: the model's)"),
        threads: int = typer.Option(1),
    ) -> None:
        """Predict one 2D image: writes the prediction (JSON, PNG labels) and a PNG overlay."""
        print(
            json.dumps(
                run_predict(model, image, out, section, score, scale, threads), default=float
            )
        )
