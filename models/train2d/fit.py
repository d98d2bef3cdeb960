"""One training loop for every 2D task model: each has ``losses(*batch) -> dict`` and the loop
sums the terms, steps AdamW with a linear warm-up and a cosine decay, and records the history
(total and per-term losses, seconds, images/s). Detectors trained from scratch need the warm-up:
the first RPN steps otherwise diverge."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from models.errors import InputError


def default_device() -> torch.device:
    """The first GPU when there is one, else the CPU: 2D training runs where it is fastest."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a clock read after it measures the work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_device(obj, device: torch.device | str):
    """``obj`` (a tensor, or lists / tuples / dicts of them) on ``device``; other values as is."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def _count(batch) -> int:
    first = batch[0]
    return len(first) if isinstance(first, list | tuple) else int(first.shape[0])


def fit(
    model: torch.nn.Module,
    next_batch: Callable[[int], tuple],
    iterations: int,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    warmup: int | None = None,
    grad_clip: float = 10.0,
    max_seconds: float | None = None,
    log: Callable[[int, dict], None] | None = None,
    log_every: int = 50,
    device: torch.device | str | None = None,
) -> dict:
    """Train ``model`` for ``iterations`` batches from ``next_batch(iteration)``; returns the
    history: ``loss`` (per iteration), ``terms`` (per-term, last iteration), ``seconds``,
    ``images``, ``images_per_s``, ``iterations``, ``device``. The model and every batch move to
    ``device`` (default: :func:`default_device`)."""
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    if iterations < 1:
        raise InputError(f"iterations={iterations} must be at least 1")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    warm = max(1, iterations // 20) if warmup is None else max(1, warmup)

    def factor(it: int) -> float:
        if it < warm:
            return (it + 1) / warm
        t = (it - warm) / max(1, iterations - warm)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    history = {"loss": [], "terms": {}, "images": 0}
    t0 = time.perf_counter()
    it = 0
    for it in range(iterations):
        batch = to_device(next_batch(it), device)
        terms = model.losses(*batch)
        total = sum(terms.values())
        if not torch.isfinite(total):
            raise InputError(
                f"training diverged at iteration {it} (loss {float(total)}): lower the learning "
                f"rate (now {lr}) or check the inputs for NaN"
            )
        opt.zero_grad(set_to_none=True)
        total.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        sched.step()
        history["loss"].append(float(total.detach()))
        history["terms"] = {k: float(v.detach()) for k, v in terms.items()}
        history["images"] += _count(batch)
        if log is not None and (it % log_every == 0 or it == iterations - 1):
            log(it, {"loss": history["loss"][-1], **history["terms"]})
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
    synchronize(device)
    seconds = time.perf_counter() - t0
    history.update(
        seconds=seconds,
        iterations=it + 1,
        images_per_s=history["images"] / max(seconds, 1e-9),
        device=str(device),
    )
    model.eval()
    return history
