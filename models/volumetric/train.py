"""Training a boundary or affinity network on numpy volumes.

Random crops of the training volume are augmented (models.volumetric.augment), targets are computed from
the augmented labels (models.volumetric.targets), and the model is validated on a held-out volume by tiled
prediction (models.volumetric.predict). The checkpoint at ``out`` is rewritten every
``checkpoint_every`` iterations with the optimiser state, so ``resume=True`` continues a run.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.architectures import build_model
from models.base import Network
from models.checkpoint import read_checkpoint, save_checkpoint
from models.errors import ConfigError, InputError
from models.volumetric.augment import AugmentConfig, Augmenter
from models.volumetric.losses import LOSSES, masked_loss
from models.volumetric.metrics import average_precision, f1_score
from models.volumetric.predict import normalize, predict_volume
from models.volumetric.targets import affinities, boundary_map

DEFAULT_MODEL = {
    "ndim": 3,
    "encoder": {
        "name": "conv",
        "widths": [12, 24, 48, 96],
        "scale_factors": 2,
        "kernel_sizes": 3,
        "down": "maxpool",
        "norm": "batch",
        "activation": "relu",
    },
    "up": "transposed",
    "skip": "concat",
}


@dataclass
class TrainConfig:
    """Everything a run depends on; loaded from YAML with unknown keys refused."""

    architecture: str = "unet"
    model: dict = field(default_factory=lambda: dict(DEFAULT_MODEL))
    target: str = "boundary"  # or "affinity"
    offsets: list | None = None  # affinity offsets; default nearest neighbours
    crop_shape: list[int] = field(default_factory=lambda: [48, 48, 48])
    batch_size: int = 2
    iterations: int = 2000
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"  # or "constant"
    loss: str = "bce_dice"
    val_every: int = 250
    checkpoint_every: int = 250
    seed: int = 0
    threads: int = 2
    precision: str = "fp32"  # or "bf16": autocast (weights stay fp32); ~2-4x faster on CPUs
    # with AVX512-BF16 and on GPUs
    max_minutes: float | None = None  # stop (and save) after this much wall time; the cosine
    # schedule then follows whichever of iterations / max_minutes runs out first
    augment: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict | None) -> TrainConfig:
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        c = cls(**d)
        if c.target not in ("boundary", "affinity"):
            raise ConfigError(f"target={c.target!r}; use 'boundary' or 'affinity'")
        if c.loss not in LOSSES:
            raise ConfigError(f"loss={c.loss!r} is unknown; use one of {LOSSES}")
        if c.lr_schedule not in ("cosine", "constant"):
            raise ConfigError(f"lr_schedule={c.lr_schedule!r}; use 'cosine' or 'constant'")
        if c.precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision={c.precision!r}; use 'fp32' or 'bf16'")
        if c.iterations < 1 or c.batch_size < 1:
            raise ConfigError("iterations and batch_size must be at least 1")
        AugmentConfig.from_dict(c.augment)
        return c

    def offsets_or_default(self, ndim: int) -> list[list[int]]:
        if self.offsets:
            return [list(o) for o in self.offsets]
        return [[-1 if a == axis else 0 for a in range(ndim)] for axis in range(ndim)]


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
    else:
        kwargs.update(output="boundary", out_channels=1)
    sample = raw[tuple(slice(None, None, max(1, s // 64)) for s in raw.shape)].astype(np.float64)
    kwargs["normalization"] = {"mean": float(sample.mean()), "std": float(sample.std() or 1.0)}
    return build_model(config.architecture, kwargs)


class Sampler:
    """Random augmented crops with their targets and masks, as torch batches."""

    def __init__(self, raw, labels, model: Network, config: TrainConfig) -> None:
        self.spec = model.spec
        self.raw = normalize(raw, self.spec)
        self.labels = labels
        self.config = config
        self.augment = Augmenter(AugmentConfig.from_dict(config.augment))
        self.crop = tuple(int(c) for c in config.crop_shape)
        if len(self.crop) != self.spec.ndim:
            raise ConfigError(f"crop_shape {self.crop} must have {self.spec.ndim} entries")
        bad = [c for c, m in zip(self.crop, self.spec.size_multiple, strict=True) if c % m]
        if bad:
            raise ConfigError(
                f"crop_shape {self.crop} must be a multiple of the network's {self.spec.size_multiple}"
            )
        offsets = self.spec.offsets or ()
        self.margin = max([1] + [abs(v) for o in offsets for v in o])
        big = tuple(c + 2 * self.margin for c in self.crop)
        if any(b > s for b, s in zip(big, raw.shape, strict=True)):
            raise InputError(
                f"training volume {raw.shape} is smaller than a crop with margin {big}; "
                "use a smaller crop_shape or more data"
            )
        self.big = big

    def sample(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xs, ys, ms = [], [], []
        inner = tuple(slice(self.margin, self.margin + c) for c in self.crop)
        for _ in range(self.config.batch_size):
            start = [
                int(rng.integers(0, s - b + 1))
                for s, b in zip(self.raw.shape, self.big, strict=False)
            ]
            sl = tuple(slice(a, a + b) for a, b in zip(start, self.big, strict=True))
            raw, labels = self.augment(self.raw[sl], self.labels[sl], rng)
            if self.spec.output == "affinity":
                target, mask = affinities(labels, self.spec.offsets)
                target, mask = target[(slice(None),) + inner], mask[(slice(None),) + inner]
            else:
                target, mask = boundary_map(labels)
                target, mask = target[inner][None], mask[inner][None]
            xs.append(raw[inner][None])
            ys.append(target)
            ms.append(mask)
        return tuple(torch.from_numpy(np.stack(a)) for a in (xs, ys, ms))


def validate(
    model: Network, raw: np.ndarray, labels: np.ndarray, loss_name: str, precision: str = "fp32"
) -> dict:
    """Loss, F1 at 0.5 and average precision on a held-out volume (whole, tiled prediction)."""
    pred = predict_volume(model, raw, precision=precision)
    if model.spec.output == "affinity":
        target, mask = affinities(labels, model.spec.offsets)
    else:
        target, mask = boundary_map(labels)
        target, mask = target[None], mask[None]
    p = torch.from_numpy(pred)
    with torch.no_grad():
        loss = masked_loss(
            loss_name, torch.logit(p, eps=1e-6), torch.from_numpy(target), torch.from_numpy(mask)
        )
    f1 = f1_score(pred, target, mask, 0.5)
    return {
        "loss": float(loss),
        "f1": f1["f1"],
        "precision": f1["precision"],
        "recall": f1["recall"],
        "ap": average_precision(pred, target, mask),
        "pred": pred,
        "target": target,
    }


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
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    check_pair(raw, labels)
    if (val_raw is None) != (val_labels is None):
        raise InputError("give both val_raw and val_labels, or neither")
    if val_raw is not None:
        check_pair(val_raw, val_labels, "validation")
    out = Path(out)
    torch.set_num_threads(max(1, config.threads))
    history = {"iteration": [], "loss": [], "val": [], "seconds": 0.0}
    start = 0
    if out.exists() and not resume:
        raise InputError(f"{out} exists; pass resume=True (--resume) to continue it, or remove it")
    if resume and out.exists():
        state = read_checkpoint(out)
        ts = state.get("train_state") or {}
        if not ts:
            raise InputError(f"{out} holds no training state (an exported model?); cannot resume")
        if overrides is not None:
            config = TrainConfig.from_dict({**ts["config"], **overrides})
        model = build_model(state["architecture"], state["config"])
        model.load_state_dict(state["state_dict"])
        history, start = ts["history"], int(ts["iteration"])
        log(f"resuming {out} at iteration {start} of {config.iterations}")
    else:
        model = make_model(config, raw)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if start:
        opt.load_state_dict(ts["optimizer"])
    sampler = Sampler(raw, labels, model, config)
    rng = np.random.default_rng([config.seed, start])
    torch.manual_seed(config.seed * 1_000_003 + start)
    plot_dir = Path(plot_dir) if plot_dir else out.with_name(out.stem + "_plots")

    def lr_at(it: int, seconds: float) -> float:
        """Cosine decay over whichever budget runs out first: iterations or max_minutes."""
        if config.lr_schedule == "constant":
            return config.lr
        done = it / config.iterations
        if config.max_minutes:
            done = max(done, seconds / (60 * config.max_minutes))
        return config.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))

    def save(it: int) -> None:
        ts = {
            "iteration": it,
            "config": asdict(config),
            "optimizer": opt.state_dict(),
            "history": history,
        }
        save_checkpoint(out, model, metadata=metadata, train_state=ts)

    def run_validation(it: int) -> None:
        if val_raw is None:
            return
        v = validate(model, val_raw, val_labels, config.loss, config.precision)
        history["val"].append({k: v[k] for k in ("loss", "f1", "precision", "recall", "ap")})
        history["val"][-1]["iteration"] = it
        log(f"iteration {it}: val loss {v['loss']:.4f} F1@0.5 {v['f1']:.4f} AP {v['ap']:.4f}")
        try:
            from models.volumetric.plots import plot_curves, plot_slice

            plot_dir.mkdir(parents=True, exist_ok=True)
            plot_curves(history, plot_dir / "loss.png")
            z = val_raw.shape[0] // 2
            plot_slice(
                val_raw[z],
                v["target"][0][z],
                v["pred"][0][z],
                plot_dir / "val_slice.png",
                f"held-out section {z}, iteration {it}",
            )
        except ImportError as e:  # plots are a convenience; never lose a run over them
            log(f"no plots ({e})")

    bar = _progress(config.iterations, start, progress)
    t0, seconds0 = time.time(), float(history.get("seconds", 0.0))
    model.train()
    it = start
    while it < config.iterations:
        for g in opt.param_groups:
            g["lr"] = lr_at(it, seconds0 + time.time() - t0)
        x, y, m = sampler.sample(rng)
        with torch.autocast("cpu", torch.bfloat16, enabled=config.precision == "bf16"):
            logits = model(x)
        loss = masked_loss(config.loss, logits.float(), y, m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        it += 1
        history["iteration"].append(it)
        history["loss"].append(float(loss.detach()))
        history["seconds"] = seconds0 + time.time() - t0
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history['loss'][-1]:.4f}", refresh=False)
        timed_out = config.max_minutes is not None and history["seconds"] > 60 * config.max_minutes
        if it % config.val_every == 0 or it == config.iterations or timed_out:
            run_validation(it)
            model.train()
        if it % config.checkpoint_every == 0 or it == config.iterations or timed_out:
            save(it)
        history["seconds"] = seconds0 + time.time() - t0
        if timed_out:
            log(f"stopping at iteration {it}: max_minutes={config.max_minutes} reached")
            break
    if bar is not None:
        bar.close()
    model.eval()
    return {"iterations": it, "history": history, "model": model, "out": str(out)}


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
    state = read_checkpoint(checkpoint)
    model = build_model(state["architecture"], state["config"])
    model.load_state_dict(state["state_dict"])
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
