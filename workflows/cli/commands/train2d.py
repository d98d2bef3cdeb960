"""``petaseg train2d {semantic,localize,detect,instance}`` and ``petaseg predict2d``.

Training reads a data preset (``--data isbi|vnc|fib``, see workflows.training.data2d: its
training sections only), trains on random tiles, evaluates on the preset's held-out sections,
and writes the checkpoint plus ``<out>.metrics.json`` (``workflows.training.train2d``).
``predict2d`` writes the prediction (JSON, class or instance PNG) and a PNG overlay for a person
to look at.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.errors import InputError
from workflows.cli.options import OutputFolder

DATA_HELP = "data preset: isbi (membranes), vnc (5 classes; mitochondria/synapse objects), fib (neuron profiles)"

Out = Annotated[Path, typer.Option(help="checkpoint to write (.pt)")]
Data = Annotated[str, typer.Option(help=DATA_HELP)]
Raw = Annotated[
    str | None, typer.Option(help="override the preset's raw URL (same sections are used)")
]
Labels = Annotated[str | None, typer.Option(help="override the preset's labels URL")]
Scale = Annotated[int | None, typer.Option(help="downsampling (default: the preset's)")]
Threads = Annotated[int, typer.Option(help="torch CPU threads")]

# the object commands: their --model choices (the name -> the detection model kind), the
# first one the default, and their help
DETECTION_MODELS = {
    "detect": {"two_stage": "two_stage", "grid": "grid"},
    "instance": {"mask_rcnn": "instance"},
}
DETECTION_HELP = {
    "detect": "Object boxes: two-stage (Faster R-CNN) or single-shot grid detector; COCO mAP.",
    "instance": "Mask R-CNN on our encoder + FPN (instances); COCO box and mask mAP on held-out "
    "sections.",
}


def _print(summary: dict) -> None:
    print(json.dumps(summary, default=float))


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
    threads: Threads = 1,
    scale: Annotated[int, typer.Option(help="downsample sections by this factor first")] = 1,
    quiet: bool = False,
) -> None:
    """Per-pixel classes with a U-Net or FCN (softmax); evaluated on the held-out sections."""
    from workflows.training.train2d import Train2dRun, run_semantic

    run = Train2dRun(data, out, raw, labels, iterations, batch, lr, seed, threads, scale, quiet)
    _print(run_semantic(run, arch, up, tile))


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
    threads: Threads = 1,
    scale: Scale = None,
    quiet: bool = False,
) -> None:
    """One object per crop: class + box (cross entropy + smooth-L1)."""
    from workflows.training.train2d import Train2dRun, run_localize

    run = Train2dRun(data, out, raw, labels, iterations, batch, lr, seed, threads, scale, quiet)
    _print(run_localize(run, crop))


def detect_objects(
    ctx: typer.Context,
    out: Out,
    data: Data = "vnc",
    raw: Raw = None,
    labels: Labels = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="detect: two_stage (Faster R-CNN, the default) or grid (single shot); "
            "instance: mask_rcnn (the instance model, the default)"
        ),
    ] = None,
    iterations: int = 300,
    batch: int = 2,
    tile: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    threads: Threads = 1,
    scale: Scale = None,
    quiet: bool = False,
) -> None:
    """Objects of the held-out sections, scored by COCO mAP: ``train2d detect`` trains a box
    detector (two-stage Faster R-CNN or a single-shot grid), ``train2d instance`` Mask R-CNN
    on our encoder + FPN (boxes and masks); ``--model`` picks among the command's models."""
    from workflows.training.train2d import Train2dRun, run_detect

    kinds = DETECTION_MODELS[ctx.info_name]
    model = next(iter(kinds)) if model is None else model
    if model not in kinds:
        raise InputError(f"--model {model!r} is unknown; use one of {sorted(kinds)}")
    run = Train2dRun(data, out, raw, labels, iterations, batch, lr, seed, threads, scale, quiet)
    _print(run_detect(run, kinds[model], tile))


def predict2d(
    model: Annotated[Path, typer.Option(help="checkpoint from `petaseg train2d`")],
    image: Annotated[str, typer.Option(help="a PNG/TIFF image, or a volume URL (with --section)")],
    out: OutputFolder = Path("predictions2d"),
    section: Annotated[int, typer.Option(help="z-section of a volume URL")] = 0,
    score: Annotated[float, typer.Option(help="keep detections with at least this score")] = 0.5,
    scale: Annotated[int | None, typer.Option(help="downsampling (default: the model's)")] = None,
    threads: Threads = 1,
) -> None:
    """Predict one 2D image: writes the prediction (JSON, PNG labels) and a PNG overlay."""
    from workflows.training.train2d import run_predict

    _print(
        run_predict(model, image, out, section=section, score=score, scale=scale, threads=threads)
    )


group = typer.Typer(help="Train 2D task models on EM sections.", no_args_is_help=True)
group.command("semantic")(semantic)
group.command("localize")(localize)
for _name, _help in DETECTION_HELP.items():
    group.command(_name, help=_help)(detect_objects)
