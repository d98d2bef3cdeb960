"""Checkpoints: architecture + config (incl. input normalisation) + weights in one file.

The file is a plain dict of tensors, numbers, strings and lists, so it loads with
``torch.load(..., weights_only=True)``: opening a checkpoint never runs code from it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from models.base import Network
from models.errors import CheckpointError, ConfigError
from models.fcn import FCN
from models.unet import UNet

FORMAT = "petaseg-model"
VERSION = 1
ARCHITECTURES: dict[str, type[Network]] = {"unet": UNet, "fcn": FCN}


def build_model(architecture: str, config: dict) -> Network:
    """A fresh (untrained) model from an architecture name and its constructor config."""
    if architecture not in ARCHITECTURES:
        raise ConfigError(
            f"architecture {architecture!r} is unknown; use one of {sorted(ARCHITECTURES)}"
        )
    try:
        return ARCHITECTURES[architecture](**config)
    except TypeError as e:
        raise ConfigError(f"model config for {architecture!r} is invalid: {e}") from None


def save_checkpoint(
    path: str | os.PathLike,
    model: Network,
    metadata: dict | None = None,
    train_state: dict | None = None,
) -> None:
    """Write atomically (temp file + rename), so a crash never leaves a half-written file."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": model.architecture,
        "config": model.config,
        "spec": model.spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": metadata or {},
        "train_state": train_state,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict:
    """The checkpoint's dict, validated; CheckpointError if missing, corrupt or foreign."""
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
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a petaseg model checkpoint (no '{FORMAT}' format tag); "
            "save models with models.checkpoint.save_checkpoint"
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
    model: Network | None = None,
) -> Network:
    """Rebuild the model a checkpoint describes and load its weights (eval mode).

    With ``architecture`` or ``model`` given, a checkpoint of another architecture (or one whose
    weights do not fit ``model``) is refused with CheckpointError.
    """
    payload = read_checkpoint(path, map_location)
    arch = payload.get("architecture")
    expected = architecture or (model.architecture if model is not None else None)
    if expected is not None and arch != expected:
        raise CheckpointError(
            f"checkpoint {path} holds a {arch!r} model, not the expected {expected!r}"
        )
    if model is None:
        try:
            model = build_model(arch, payload["config"])
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
