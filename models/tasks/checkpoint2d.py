"""Checkpoints of the 2D task models: task name + constructor config + weights in one plain
dict, loaded with ``torch.load(..., weights_only=True)`` (opening a file never runs its code)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from models.errors import CheckpointError, ConfigError

FORMAT = "petaseg-model2d"
VERSION = 1


def _builders() -> dict:
    from models.tasks.detect_grid import GridDetector
    from models.tasks.detect_two_stage import RCNN
    from models.tasks.localize import Localizer
    from models.tasks.semantic import SemanticNet
    from models.tasks.sliding_window import PatchClassifier

    return {
        "semantic": lambda c: SemanticNet(**c),
        "patch": lambda c: PatchClassifier(**c),
        "localize": lambda c: Localizer(**c),
        "detect": lambda c: RCNN(**c),
        "instance": lambda c: RCNN(**c),
        "grid_detect": lambda c: GridDetector(**c),
    }


def build_task_model(task: str, config: dict) -> torch.nn.Module:
    builders = _builders()
    if task not in builders:
        raise ConfigError(f"task {task!r} is unknown; use one of {sorted(builders)}")
    try:
        return builders[task](dict(config))
    except TypeError as e:
        raise ConfigError(f"model config for task {task!r} is invalid: {e}") from None


def save_task_model(
    path: str | os.PathLike, model: torch.nn.Module, metadata: dict | None = None
) -> None:
    """Write atomically (temp file + rename)."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "task": model.task,
        "config": model.config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": metadata or {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_task_model(path: str | os.PathLike, task: str | None = None) -> torch.nn.Module:
    """The model a checkpoint describes, weights loaded, in eval mode on CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; give the path of a .pt file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign files raise many types
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a PyTorch file ({type(e).__name__}); retrain it"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a 2D task checkpoint (no '{FORMAT}' tag); train it with "
            "`petaseg train2d`"
        )
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has version {payload['version']}; upgrade petaseg")
    if task is not None and payload["task"] != task:
        raise CheckpointError(f"{path} holds a {payload['task']!r} model, not {task!r}")
    try:
        model = build_task_model(payload["task"], payload["config"])
        model.load_state_dict(payload["state_dict"], strict=True)
    except (ConfigError, RuntimeError, KeyError) as e:
        raise CheckpointError(
            f"checkpoint {path} does not fit its architecture: {str(e)[:300]}"
        ) from None
    model.metadata = payload.get("metadata", {})
    return model.eval()
