"""Whole-array prediction in tiles for numpy volumes (validation, tests, benchmarks).

Tiles are read grown by the model's ``spec.context`` and cropped back; context and tile shape
are multiples of ``spec.size_multiple``, so every tile sits on the same pooling grid and the
result equals one whole-volume pass (the blockwise predict stage relies on the same rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np
import torch

from models.base import Network
from models.device import autocast
from models.errors import InputError
from models.spec import ModelSpec


def normalize(raw: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Raw intensities to the network's input scale: ``(raw - mean) / std`` as float32."""
    n = spec.normalization
    return ((raw.astype(np.float32) - np.float32(n["mean"])) / np.float32(n["std"])).astype(
        np.float32
    )


def round_up(values: Sequence[int], multiple: Sequence[int]) -> tuple[int, ...]:
    return tuple(-(-int(v) // m) * m for v, m in zip(values, multiple, strict=True))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX). Without it, bf16
    autocast on the CPU is emulated and many times slower than float32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:  # not Linux: let torch's own capability report decide
        return "AVX512" in torch.backends.cpu.get_cpu_capability()
    return "avx512_bf16" in flags or "amx_bf16" in flags


@torch.no_grad()
def predict_volume(
    model: Network,
    raw: np.ndarray,
    tile_shape: Sequence[int] | None = None,
    normalized: bool = False,
    device: str | torch.device | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Probabilities of shape (out_channels, *raw.shape[-ndim:]) for ``raw`` of shape
    (*spatial) or (channels, *spatial); edges are mirror-padded. ``precision="bf16"`` runs the
    network under bfloat16 autocast (faster, ~3 significant digits). ``device``: where the
    model's weights are by default (it must hold them)."""
    if precision not in ("fp32", "bf16"):
        raise InputError(f"precision={precision!r}; use 'fp32' or 'bf16'")
    spec = model.spec
    if raw.ndim == spec.ndim:
        raw = raw[None]
    if raw.ndim != spec.ndim + 1 or raw.shape[0] != spec.in_channels:
        raise InputError(
            f"raw of shape {raw.shape} does not fit a model taking {spec.in_channels} channel(s) "
            f"of {spec.ndim}D data"
        )
    device = torch.device(device) if device is not None else next(model.parameters()).device
    x = raw if normalized else normalize(raw, spec)
    spatial = x.shape[1:]
    ctx = spec.context
    if tile_shape is None:
        tile_shape = (64, 128, 128)[-spec.ndim :]
    tile = round_up(
        np.minimum(tile_shape, round_up(spatial, spec.size_multiple)), spec.size_multiple
    )
    covered = round_up(spatial, tile)
    pad = [(0, 0)] + [(c, c + cov - s) for c, cov, s in zip(ctx, covered, spatial, strict=True)]
    x = _mirror_pad(x, pad)
    out = np.zeros((spec.out_channels, *covered), np.float32)
    was_training = model.training
    model.eval()
    try:
        for start in product(*(range(0, cov, t) for cov, t in zip(covered, tile, strict=True))):
            src = (slice(None),) + tuple(
                slice(s, s + t + 2 * c) for s, t, c in zip(start, tile, ctx, strict=True)
            )
            inp = torch.from_numpy(np.ascontiguousarray(x[src]))[None].to(device)
            with autocast(device, precision):
                y = model.predict_proba(inp)[0].float().cpu().numpy()
            crop = (slice(None),) + tuple(slice(c, c + t) for c, t in zip(ctx, tile, strict=True))
            dst = (slice(None),) + tuple(slice(s, s + t) for s, t in zip(start, tile, strict=True))
            out[dst] = y[crop]
    finally:
        model.train(was_training)
    return out[(slice(None),) + tuple(slice(0, s) for s in spatial)]


def _mirror_pad(x: np.ndarray, pad) -> np.ndarray:
    """Mirror padding that also works when the pad exceeds the array (numpy reflects again)."""
    if all(p == (0, 0) for p in pad):
        return x
    if any(x.shape[i] < 2 and sum(p) > 0 for i, p in enumerate(pad)):
        return np.pad(x, pad, mode="edge")
    return np.pad(x, pad, mode="reflect")
