"""``petaseg train boundary|affinity``: train a 3D network on a raw + labels volume pair.

The last ``--val-sections`` z-sections are held out for validation and never trained on.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from pipeline.errors import ConfigError, InputError


def _load_config(path: Path | None) -> dict:
    if path is None:
        return {}
    import yaml

    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {path}: not valid YAML ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of training options")
    return data


def _read(url: str, what: str):
    from pipeline.io.volume import open_volume

    vol = open_volume(url)
    if vol.channels:
        raise InputError(
            f"--{what} {url}: has {vol.channels} channels; give a single-channel volume"
        )
    return vol, vol.read()


def run_training(
    target: str,
    raw_url: str,
    labels_url: str,
    out: Path,
    config_path: Path | None = None,
    iterations: int | None = None,
    val_sections: int = 30,
    resume: bool = False,
    max_minutes: float | None = None,
    plots: Path | None = None,
    progress: bool = True,
) -> dict:
    """Read the volumes, split off the held-out sections and train (see models.volumetric.train)."""
    from models.volumetric import TrainConfig, train

    cfg = _load_config(config_path)
    cfg["target"] = target
    if iterations is not None:
        cfg["iterations"] = iterations
    if max_minutes is not None:
        cfg["max_minutes"] = max_minutes
    TrainConfig.from_dict(cfg)  # refuse bad options before reading any data
    raw_vol, raw = _read(raw_url, "raw")
    labels_vol, labels = _read(labels_url, "labels")
    if raw.shape != labels.shape:
        raise InputError(
            f"--raw {raw_url} has shape {raw.shape} but --labels {labels_url} has {labels.shape}; "
            "give labels for exactly the raw volume"
        )
    if tuple(raw_vol.voxel_size) != tuple(labels_vol.voxel_size):
        raise InputError(
            f"--raw voxel size {raw_vol.voxel_size} nm differs from --labels "
            f"{labels_vol.voxel_size} nm; resample one of them"
        )
    if val_sections < 0 or val_sections >= raw.shape[0]:
        raise InputError(
            f"--val-sections {val_sections} must be between 0 and {raw.shape[0] - 1} "
            f"(the volume has {raw.shape[0]} z-sections)"
        )
    split = raw.shape[0] - val_sections
    val_raw = raw[split:] if val_sections else None
    val_labels = labels[split:] if val_sections else None
    metadata = {
        "raw": raw_url,
        "labels": labels_url,
        "voxel_size": list(raw_vol.voxel_size),
        "train_z": [0, split],
        "val_z": [split, raw.shape[0]],
    }
    t0 = time.time()
    result = train(
        raw[:split],
        labels[:split],
        out,
        cfg,
        val_raw,
        val_labels,
        resume=resume,
        progress=progress,
        plot_dir=plots,
        metadata=metadata,
    )
    hist = result["history"]
    summary = {
        "out": str(out),
        "iterations": result["iterations"],
        "seconds_this_run": round(time.time() - t0, 1),
        "seconds_total": round(hist["seconds"], 1),
        "validation": hist["val"][-1] if hist["val"] else None,
    }
    return summary


Raw = Annotated[str, typer.Option(help="raw EM volume URL, e.g. data.h5/volumes/raw")]
Labels = Annotated[str, typer.Option(help="neuron label volume URL (0 = unlabeled)")]
Checkpoint = Annotated[Path, typer.Option(help="checkpoint to write (.pt)")]
Config = Annotated[Path | None, typer.Option(help="YAML file of training options")]
Iterations = Annotated[int | None, typer.Option(help="training iterations (batches)")]
ValSections = Annotated[
    int, typer.Option(help="hold out the last N z-sections for validation (never trained on)")
]
Resume = Annotated[bool, typer.Option(help="continue the run saved at --out")]
MaxMinutes = Annotated[float | None, typer.Option(help="stop and save after this long")]
Plots = Annotated[Path | None, typer.Option(help="folder for PNGs (default: beside --out)")]
Progress = Annotated[bool, typer.Option(help="show a progress bar")]


def boundary(
    raw: Raw,
    labels: Labels,
    out: Checkpoint,
    config: Config = None,
    iterations: Iterations = None,
    val_sections: ValSections = 30,
    resume: Resume = False,
    max_minutes: MaxMinutes = None,
    plots: Plots = None,
    progress: Progress = True,
) -> None:
    """Train a 3D boundary U-Net; the last --val-sections are held out."""
    args = (config, iterations, val_sections, resume, max_minutes, plots, progress)
    print(json.dumps(run_training("boundary", raw, labels, out, *args)))


def affinity(
    raw: Raw,
    labels: Labels,
    out: Checkpoint,
    config: Config = None,
    iterations: Iterations = None,
    val_sections: ValSections = 30,
    resume: Resume = False,
    max_minutes: MaxMinutes = None,
    plots: Plots = None,
    progress: Progress = True,
) -> None:
    """Train a 3D affinity U-Net; the last --val-sections are held out."""
    args = (config, iterations, val_sections, resume, max_minutes, plots, progress)
    print(json.dumps(run_training("affinity", raw, labels, out, *args)))


def export(
    checkpoint: Annotated[Path, typer.Option(help="training checkpoint written by train")],
    out: Annotated[Path, typer.Option(help="model file to write (weights, config, no optimiser)")],
) -> None:
    """Strip the optimiser state from a training checkpoint: the shippable model file."""
    from models.volumetric.train import export_model

    if out.exists():
        raise InputError(f"--out {out} exists; remove it or choose another path")
    export_model(checkpoint, out)
    print(json.dumps({"out": str(out), "bytes": out.stat().st_size}))


group = typer.Typer(help="Train a boundary or affinity network.", no_args_is_help=True)
group.command("boundary")(boundary)
group.command("affinity")(affinity)
group.command("export")(export)
