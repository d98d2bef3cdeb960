"""3D network training (``petaseg train boundary|affinity``): read a raw + labels volume pair,
hold out the last z-sections for validation, and train (see ``models.volumetric.train``).

``models`` (and torch) load when a run starts, so importing this module stays light.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import ConfigError, InputError
from pipeline.io.urls import refuse_overwriting
from pipeline.io.volume import Volume, open_volume


@dataclass(frozen=True)
class Train3dRun:
    """One training run: the ``target`` (boundary or affinity), the volume pair, the checkpoint
    to write, and the options the command line sets over the ``config`` YAML."""

    target: str
    raw: str
    labels: str
    out: Path
    config: Path | None = None
    iterations: int | None = None
    val_sections: int = 30  # the last N z-sections, never trained on
    resume: bool = False
    max_minutes: float | None = None
    plots: Path | None = None
    progress: bool = True


def load_config(path: Path | None) -> dict:
    """The training options of a YAML file (none without a file)."""
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


def _training_config(run: Train3dRun) -> dict:
    """The config file's options with the run's target, iterations and time limit over them;
    refused (``models.volumetric.TrainConfig``) before any data is read."""
    from models.volumetric import TrainConfig

    cfg = load_config(run.config)
    cfg["target"] = run.target
    if run.iterations is not None:
        cfg["iterations"] = run.iterations
    if run.max_minutes is not None:
        cfg["max_minutes"] = run.max_minutes
    TrainConfig.from_dict(cfg)
    return cfg


def _read(url: str, what: str) -> tuple[Volume, np.ndarray]:
    vol = open_volume(url)
    if vol.channels:
        raise InputError(
            f"--{what} {url}: has {vol.channels} channels; give a single-channel volume"
        )
    return vol, vol.read()


def read_pair(run: Train3dRun) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(raw, labels, voxel size) of the run's volumes, refused unless they share the grid and
    leave at least one z-section for training."""
    raw_vol, raw = _read(run.raw, "raw")
    labels_vol, labels = _read(run.labels, "labels")
    if raw.shape != labels.shape:
        raise InputError(
            f"--raw {run.raw} has shape {raw.shape} but --labels {run.labels} has "
            f"{labels.shape}; give labels for exactly the raw volume"
        )
    if tuple(raw_vol.voxel_size) != tuple(labels_vol.voxel_size):
        raise InputError(
            f"--raw voxel size {raw_vol.voxel_size} nm differs from --labels "
            f"{labels_vol.voxel_size} nm; resample one of them"
        )
    if run.val_sections < 0 or run.val_sections >= raw.shape[0]:
        raise InputError(
            f"--val-sections {run.val_sections} must be between 0 and {raw.shape[0] - 1} "
            f"(the volume has {raw.shape[0]} z-sections)"
        )
    return raw, labels, tuple(raw_vol.voxel_size)


def run_training(run: Train3dRun) -> dict:
    """Read the volumes, split off the held-out sections and train; return the run's summary."""
    from models.volumetric import train

    sources = [run.raw, run.labels, str(run.config) if run.config else None]
    refuse_overwriting([str(run.out), str(run.plots) if run.plots else None], sources, "train")
    cfg = _training_config(run)
    raw, labels, voxel_size = read_pair(run)
    split = raw.shape[0] - run.val_sections
    held_out = run.val_sections > 0
    metadata = {
        "raw": run.raw,
        "labels": run.labels,
        "voxel_size": list(voxel_size),
        "train_z": [0, split],
        "val_z": [split, raw.shape[0]],
    }
    t0 = time.time()
    result = train(
        raw[:split],
        labels[:split],
        run.out,
        cfg,
        raw[split:] if held_out else None,
        labels[split:] if held_out else None,
        resume=run.resume,
        progress=run.progress,
        plot_dir=run.plots,
        metadata=metadata,
    )
    hist = result["history"]
    return {
        "out": str(run.out),
        "iterations": result["iterations"],
        "seconds_this_run": round(time.time() - t0, 1),
        "seconds_total": round(hist["seconds"], 1),
        "validation": hist["val"][-1] if hist["val"] else None,
    }
