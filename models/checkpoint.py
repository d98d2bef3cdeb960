"""Checkpoints of every model: architecture name + config + weights (+ metadata) in one file.

The file is a plain dict of tensors, numbers, strings and lists, so it loads with
``torch.load(..., weights_only=True)``: opening a checkpoint never runs code from it. One reader
serves both families of files petaseg writes, told apart by their format tag:

- volumetric networks (``"petaseg-model"``, name under ``"architecture"``, with the ``spec`` the
  predict stage plans with and an optional ``train_state`` to resume training);
- 2D task models (``"petaseg-model2d"``, name under ``"task"``).

Version 2 stores today's config layout; version 1 files (the shipped models) are translated on
reading (models.legacy).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from models.architectures import VOLUMETRIC, architecture_of, build_model
from models.errors import CheckpointError, ConfigError

VERSION = 2


@dataclass(frozen=True)
class Family:
    """A kind of checkpoint file: its format tag, the key naming the model, how to make one."""

    format: str
    name_key: str
    what: str
    fix: str


VOLUMETRIC_MODELS = Family(
    "petaseg-model",
    "architecture",
    "petaseg model checkpoint",
    "save models with models.checkpoint.save_checkpoint",
)
TASK_MODELS = Family(
    "petaseg-model2d", "task", "2D task checkpoint", "train it with `petaseg train2d`"
)
FAMILIES = {f.format: f for f in (VOLUMETRIC_MODELS, TASK_MODELS)}


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    metadata: dict | None = None,
    train_state: dict | None = None,
) -> None:
    """Write atomically (temp file + rename), so a crash never leaves a half-written file."""
    name = architecture_of(model)
    family = VOLUMETRIC_MODELS if name in VOLUMETRIC else TASK_MODELS
    payload = {
        "format": family.format,
        "version": VERSION,
        family.name_key: name,
        "config": model.config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": metadata or {},
        "train_state": train_state,
    }
    if hasattr(model, "spec"):
        payload["spec"] = model.spec.to_dict()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_checkpoint(
    path: str | os.PathLike, map_location: str = "cpu", family: Family | None = None
) -> dict:
    """The checkpoint's dict, validated; CheckpointError if missing, corrupt, foreign or (with
    ``family``) of the other family."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; give the path of a .pt file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for truncated/garbled files
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a PyTorch file ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); re-download or retrain it"
        ) from None
    found = FAMILIES.get(payload.get("format")) if isinstance(payload, dict) else None
    wanted = family or found or VOLUMETRIC_MODELS
    if found is None:
        raise CheckpointError(
            f"{path} is not a {wanted.what} (no '{wanted.format}' format tag); {wanted.fix}"
        )
    if found is not wanted:
        raise CheckpointError(
            f"{path} is a {found.what} (a {payload.get(found.name_key)!r} model), not a "
            f"{wanted.what}; {wanted.fix}"
        )
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {payload['version']}; this petaseg reads up to "
            f"{VERSION}: upgrade petaseg"
        )
    return payload


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str = "cpu",
    architecture: str | None = None,
    model: nn.Module | None = None,
    family: Family | None = None,
) -> nn.Module:
    """Rebuild the model a checkpoint describes and load its weights (eval mode).

    With ``architecture`` or ``model`` given, a checkpoint of another architecture (or one whose
    weights do not fit ``model``) is refused with CheckpointError; with ``family``, a checkpoint
    of the other family is.
    """
    payload = read_checkpoint(path, map_location, family)
    name = payload.get(FAMILIES[payload["format"]].name_key)
    expected = architecture or (architecture_of(model) if model is not None else None)
    if expected is not None and name != expected:
        raise CheckpointError(
            f"checkpoint {path} holds a {name!r} model, not the expected {expected!r}"
        )
    if model is None:
        try:
            model = build_model(name, payload["config"])
        except (ConfigError, KeyError) as e:
            raise CheckpointError(f"checkpoint {path} has an unusable model config: {e}") from None
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, KeyError) as e:
        first = str(e).splitlines()
        raise CheckpointError(
            f"checkpoint {path} does not fit this architecture (different layers or widths): "
            f"{' '.join(first[:2])[:300]}"
        ) from None
    model.metadata = payload.get("metadata", {})
    return model.to(map_location).eval()


def file_checksum(path: str | os.PathLike) -> str:
    """sha256 of a checkpoint file, for provenance attributes of outputs."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
