"""Shipped models, loadable by name: ``load_model("fib-boundary-v1")``. Each ``<name>.pt`` has a
model card ``<name>.md`` beside it (data, command, training time, validation figures)."""

from __future__ import annotations

import os
from pathlib import Path

from models.base import Network
from models.checkpoint import VOLUMETRIC_MODELS, file_checksum, load_checkpoint
from models.errors import CheckpointError

__all__ = ["ZOO", "available", "load_model", "model_path"]

ZOO = Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of the shipped models."""
    return sorted(p.stem for p in ZOO.glob("*.pt"))


def model_path(name_or_path: str | os.PathLike) -> Path:
    """The checkpoint file for a zoo name, or the path itself when it is a file."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    candidate = ZOO / f"{name_or_path}.pt"
    if candidate.is_file():
        return candidate
    raise CheckpointError(
        f"model {str(name_or_path)!r} is neither a shipped model ({', '.join(available()) or 'none'})"
        " nor an existing checkpoint file"
    )


def load_model(name_or_path: str | os.PathLike, map_location: str = "cpu") -> Network:
    """Load a shipped model by name, or any checkpoint by path; eval mode, with
    ``model.spec`` and ``model.checksum`` (sha256 of the file) set."""
    path = model_path(name_or_path)
    model = load_checkpoint(path, map_location=map_location, family=VOLUMETRIC_MODELS)
    model.checksum = file_checksum(path)
    return model
