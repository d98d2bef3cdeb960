"""Training a boundary or affinity network on numpy volumes.

Random crops of the training volume are augmented (models.volumetric.augment), targets are
computed from the augmented labels (models.volumetric.targets), and the model is validated on a
held-out volume by tiled prediction (models.volumetric.validation). The checkpoint at ``out`` is
rewritten every ``checkpoint_every`` iterations with the optimiser state, so ``resume=True``
continues a run.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.architectures import build_model
from models.base import Network
from models.checkpoint import VOLUMETRIC_MODELS, read_checkpoint, save_checkpoint
from models.device import autocast, resolve_device
from models.errors import InputError
from models.volumetric.config import TrainConfig
from models.volumetric.losses import masked_loss, masked_mse
from models.volumetric.lsd import lsd_channels
from models.volumetric.sampler import Sampler
from models.volumetric.validation import HeldOut, plot_validation, validate


def check_pair(raw: np.ndarray, labels: np.ndarray, what: str = "training") -> None:
    if raw.shape != labels.shape:
        raise InputError(
            f"{what} raw {raw.shape} and labels {labels.shape} differ in shape; give labels "
            "for exactly the raw volume (same shape, same voxel grid)"
        )


def make_model(config: TrainConfig, raw: np.ndarray) -> Network:
    """The model to train, with normalisation taken from the training raw."""
    kwargs = dict(config.model)
    ndim = kwargs.get("ndim", 3 if config.architecture == "unet" else 2)
    if config.target == "affinity":
        offsets = config.offsets_or_default(ndim)
        kwargs.update(output="affinity", offsets=offsets, out_channels=len(offsets))
        if config.lsd_sigma is not None:
            kwargs["aux_channels"] = lsd_channels(ndim)
    else:
        kwargs.update(output="boundary", out_channels=1)
    sample = raw[tuple(slice(None, None, max(1, s // 64)) for s in raw.shape)].astype(np.float64)
    kwargs["normalization"] = {"mean": float(sample.mean()), "std": float(sample.std() or 1.0)}
    return build_model(config.architecture, kwargs)


@dataclass
class Run:
    """A training run's state: what its checkpoint saves and ``resume`` restores."""

    config: TrainConfig
    model: Network
    optimizer: torch.optim.Optimizer
    history: dict
    iteration: int = 0  # iterations done

    def train_state(self) -> dict:
        return {
            "iteration": self.iteration,
            "config": asdict(self.config),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
        }


@dataclass
class Outputs:
    """Where a run reports: its checkpoint (with ``metadata``), the held-out volume (or None),
    a progress bar (or None) and a log."""

    out: Path
    metadata: dict | None
    held_out: HeldOut | None
    bar: Any
    log: Callable[[str], None]


def start_run(
    out: Path,
    config: TrainConfig,
    overrides: dict | None,
    raw: np.ndarray,
    resume: bool,
    log: Callable[[str], None],
) -> Run:
    """A new run, or with ``resume`` the one checkpointed at ``out`` (its options updated by
    ``overrides``; the model always comes from the checkpoint)."""
    if out.exists() and not resume:
        raise InputError(f"{out} exists; pass resume=True (--resume) to continue it, or remove it")
    if not (resume and out.exists()):
        model = make_model(config, raw)
        if config.init_from:
            log(warm_start(model, config.init_from))
        model.to(resolve_device(config.device))
        history = {"iteration": [], "loss": [], "val": [], "seconds": 0.0}
        return Run(config, model, _adam(model, config), history)
    state = read_checkpoint(out, family=VOLUMETRIC_MODELS)
    ts = state.get("train_state") or {}
    if not ts:
        raise InputError(f"{out} holds no training state (an exported model?); cannot resume")
    if overrides is not None:
        config = TrainConfig.from_dict({**ts["config"], **overrides})
    model = build_model(state["architecture"], state["config"])
    model.load_state_dict(state["state_dict"])
    model.to(resolve_device(config.device))  # before the optimiser: its state follows the weights
    start = int(ts["iteration"])
    log(f"resuming {out} at iteration {start} of {config.iterations}")
    optimizer = _adam(model, config)
    if start:
        optimizer.load_state_dict(ts["optimizer"])
    return Run(config, model, optimizer, ts["history"], start)


def warm_start(model: Network, source: str) -> str:
    """Copy into ``model`` every weight of ``source`` (a zoo name or checkpoint path) whose name
    and shape match; returns a one-line account of what was copied."""
    from models.zoo import model_path

    state = read_checkpoint(model_path(source), family=VOLUMETRIC_MODELS)["state_dict"]
    own = model.state_dict()
    same = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not same:
        raise InputError(f"init_from={source!r}: no weight matches this network's layers")
    model.load_state_dict(same, strict=False)
    return f"warm start from {source}: {len(same)} of {len(own)} tensors copied"


def _adam(model: Network, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def lr_at(config: TrainConfig, iteration: int, seconds: float) -> float:
    """Cosine decay over whichever budget runs out first: iterations or max_minutes."""
    if config.lr_schedule == "constant":
        return config.lr
    done = iteration / config.iterations
    if config.max_minutes:
        done = max(done, seconds / (60 * config.max_minutes))
    return config.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))


def train_step(run: Run, batch: tuple[torch.Tensor, ...], lr: float) -> float:
    """One optimiser step on ``batch`` (crops, targets, masks) at ``lr``; the batch loss."""
    for g in run.optimizer.param_groups:
        g["lr"] = lr
    device = next(run.model.parameters()).device
    x, y, m = (t.to(device, non_blocking=True) for t in batch)
    with autocast(device, run.config.precision):
        logits = run.model(x).float()
    n = run.model.config["out_channels"]  # the primary channels; LSDs (if any) follow them
    loss = masked_loss(run.config.loss, logits[:, :n], y[:, :n], m[:, :n])
    if run.model.aux_channels:
        lsd = masked_mse(torch.sigmoid(logits[:, n:]), y[:, n:], m[:, n:])
        loss = loss + run.config.lsd_weight * lsd
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    return float(loss.detach())


def record_validation(run: Run, outputs: Outputs) -> None:
    """Validate on the held-out volume (if any), add the scores to the history, plot them."""
    held_out = outputs.held_out
    if held_out is None:
        return
    scores = validate(
        run.model, held_out.raw, held_out.labels, run.config.loss, run.config.precision
    )
    it = run.iteration
    run.history["val"].append({k: scores[k] for k in ("loss", "f1", "precision", "recall", "ap")})
    run.history["val"][-1]["iteration"] = it
    outputs.log(
        f"iteration {it}: val loss {scores['loss']:.4f} F1@0.5 {scores['f1']:.4f} "
        f"AP {scores['ap']:.4f}"
    )
    try:
        plot_validation(run.history, held_out, scores, it)
    except ImportError as e:  # plots are a convenience; never lose a run over them
        outputs.log(f"no plots ({e})")


def save_run(run: Run, outputs: Outputs) -> None:
    save_checkpoint(
        outputs.out, run.model, metadata=outputs.metadata, train_state=run.train_state()
    )


def run_iterations(run: Run, sampler: Sampler, rng: np.random.Generator, outputs: Outputs) -> None:
    """Train until ``config.iterations`` (or ``max_minutes``), validating every ``val_every`` and
    checkpointing every ``checkpoint_every`` iterations and at the end."""
    c = run.config
    t0, seconds0 = time.time(), float(run.history.get("seconds", 0.0))
    run.model.train()
    while run.iteration < c.iterations:
        lr = lr_at(c, run.iteration, seconds0 + time.time() - t0)
        loss = train_step(run, sampler.sample(rng), lr)
        run.iteration += 1
        run.history["iteration"].append(run.iteration)
        run.history["loss"].append(loss)
        run.history["seconds"] = seconds0 + time.time() - t0
        if outputs.bar is not None:
            outputs.bar.update(1)
            outputs.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        timed_out = c.max_minutes is not None and run.history["seconds"] > 60 * c.max_minutes
        last = run.iteration == c.iterations or timed_out
        if run.iteration % c.val_every == 0 or last:
            record_validation(run, outputs)
            run.model.train()
        if run.iteration % c.checkpoint_every == 0 or last:
            save_run(run, outputs)
        run.history["seconds"] = seconds0 + time.time() - t0
        if timed_out:
            outputs.log(
                f"stopping at iteration {run.iteration}: max_minutes={c.max_minutes} reached"
            )
            break


def train(
    raw: np.ndarray,
    labels: np.ndarray,
    out: str | Path,
    config: TrainConfig | dict | None = None,
    val_raw: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    resume: bool = False,
    progress: bool = True,
    plot_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    metadata: dict | None = None,
) -> dict:
    """Train, checkpointing to ``out``; returns the history (losses, validations, seconds).

    ``config`` is a TrainConfig, or a dict of options. With ``resume=True`` and a checkpoint at
    ``out``, the run continues with the checkpoint's options, updated by a dict ``config`` (e.g.
    more iterations); the model itself always comes from the checkpoint.
    """
    overrides = config if isinstance(config, dict) else None
    config = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    log = log or _log_to_stderr
    check_pair(raw, labels)
    if (val_raw is None) != (val_labels is None):
        raise InputError("give both val_raw and val_labels, or neither")
    out = Path(out)
    held_out = None
    if val_raw is not None:
        check_pair(val_raw, val_labels, "validation")
        plots = Path(plot_dir) if plot_dir else out.with_name(out.stem + "_plots")
        held_out = HeldOut(val_raw, val_labels, plots)
    torch.set_num_threads(max(1, config.threads))
    run = start_run(out, config, overrides, raw, resume, log)
    sampler = Sampler(raw, labels, run.model, run.config)
    rng = np.random.default_rng([run.config.seed, run.iteration])
    torch.manual_seed(run.config.seed * 1_000_003 + run.iteration)
    bar = _progress(run.config.iterations, run.iteration, progress)
    run_iterations(run, sampler, rng, Outputs(out, metadata, held_out, bar, log))
    if bar is not None:
        bar.close()
    run.model.eval()
    return {
        "iterations": run.iteration,
        "history": run.history,
        "model": run.model,
        "out": str(out),
        "device": str(next(run.model.parameters()).device),
    }


def _log_to_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    tty = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc="train", mininterval=0.5 if tty else 30)


def export_model(checkpoint: str | Path, out: str | Path, metadata: dict | None = None) -> Network:
    """Copy a training checkpoint without its optimiser state (the shippable model)."""
    state = read_checkpoint(checkpoint, family=VOLUMETRIC_MODELS)
    config = dict(state["config"])
    if config.get("aux_channels"):
        config["aux_channels"] = 0  # the shipped model predicts its primary output only
    model = build_model(state["architecture"], config)
    model.load_state_dict(without_aux_channels(state["state_dict"], state["config"]))
    meta = dict(state.get("metadata") or {})
    meta.update(metadata or {})
    ts = state.get("train_state") or {}
    if ts:
        meta.setdefault("iterations", ts.get("iteration"))
        meta.setdefault("train_seconds", round(float(ts["history"].get("seconds", 0.0)), 1))
        meta.setdefault("train_config", ts.get("config"))
        if ts["history"].get("val"):
            meta.setdefault("validation", ts["history"]["val"][-1])
    save_checkpoint(out, model, metadata=meta)
    return model.eval()


def without_aux_channels(state_dict: dict, config: dict) -> dict:
    """A U-Net's weights with the auxiliary output channels (e.g. LSDs) cut from its 1x1 head:
    the primary output's weights are unchanged."""
    if not config.get("aux_channels"):
        return state_dict
    n = int(config["out_channels"])
    return {k: (v[:n] if k in ("head.weight", "head.bias") else v) for k, v in state_dict.items()}
