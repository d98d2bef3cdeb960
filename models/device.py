"""Where a model trains or predicts: device names, and bfloat16 autocast on either device.

``"auto"`` is the first GPU when torch sees one, else the CPU. Weights stay float32 under
autocast; ``precision="bf16"`` runs convolutions and matmuls in bfloat16 (on GPUs and on CPUs
with native bf16; elsewhere emulated and slow).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

from models.errors import ConfigError

__all__ = ["autocast", "resolve_device"]


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None: cuda when available, else cpu; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` as
    given (refused when this process sees no GPU)."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but this process sees no CUDA GPU; use cpu or auto")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device={name!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return device


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """bfloat16 autocast on ``device`` for ``precision="bf16"``; a no-op for ``"fp32"``."""
    return torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")
