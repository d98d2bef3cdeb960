"""The options of one volumetric training run, read from YAML with unknown keys refused."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from models.errors import ConfigError
from models.records import refuse_unknown
from models.volumetric.augment import AugmentConfig
from models.volumetric.losses import LOSSES

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
    model: dict = field(default_factory=lambda: copy.deepcopy(DEFAULT_MODEL))  # the network's
    # config (models.architectures; a flat one, as older versions wrote, is translated)
    target: str = "boundary"  # or "affinity"
    offsets: list | None = None  # affinity offsets; default nearest neighbours
    lsd_sigma: float | None = None  # local shape descriptors as an auxiliary target (MTLSD):
    # the Gaussian window's sigma in voxels of the training volume; affinity U-Nets only
    lsd_downsample: int = 2  # LSD windows computed at this coarser factor (~8x faster at 2)
    init_from: str | None = None  # warm start: a zoo model name or checkpoint whose weights of
    # matching name and shape initialise the network (the output head is new when it differs)
    lsd_weight: float = 1.0  # weight of the LSD loss (masked MSE) beside the affinity loss
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
    device: str = "auto"  # "auto" (the first GPU when there is one), "cpu", "cuda", "cuda:N"

    @classmethod
    def from_dict(cls, d: dict | None) -> TrainConfig:
        d = dict(d or {})
        refuse_unknown(d, cls, "training")
        c = cls(**d)
        if c.target not in ("boundary", "affinity"):
            raise ConfigError(f"target={c.target!r}; use 'boundary' or 'affinity'")
        if c.loss not in LOSSES:
            raise ConfigError(f"loss={c.loss!r} is unknown; use one of {LOSSES}")
        check_lsd(c)
        if c.lr_schedule not in ("cosine", "constant"):
            raise ConfigError(f"lr_schedule={c.lr_schedule!r}; use 'cosine' or 'constant'")
        if c.precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision={c.precision!r}; use 'fp32' or 'bf16'")
        if c.iterations < 1 or c.batch_size < 1:
            raise ConfigError("iterations and batch_size must be at least 1")
        AugmentConfig.from_dict(c.augment)
        if not isinstance(c.device, str) or not (
            c.device in ("auto", "cpu", "cuda") or c.device.startswith("cuda:")
        ):
            raise ConfigError(f"device={c.device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
        return c

    def offsets_or_default(self, ndim: int) -> list[list[int]]:
        if self.offsets:
            return [list(o) for o in self.offsets]
        return [[-1 if a == axis else 0 for a in range(ndim)] for axis in range(ndim)]


def check_lsd(c: TrainConfig) -> None:
    """Local shape descriptors are an auxiliary head of an affinity U-Net."""
    if int(c.lsd_downsample) != c.lsd_downsample or c.lsd_downsample < 1:
        raise ConfigError(f"lsd_downsample={c.lsd_downsample} must be a positive integer")
    if c.lsd_sigma is None:
        return
    if not c.lsd_sigma > 0 or not c.lsd_weight >= 0:
        raise ConfigError(
            f"lsd_sigma={c.lsd_sigma} must be positive (voxels) and lsd_weight={c.lsd_weight} "
            "not negative"
        )
    if c.target != "affinity" or c.architecture != "unet":
        raise ConfigError(
            "lsd_sigma (local shape descriptors) needs target='affinity' and architecture='unet' "
            f"(got target={c.target!r}, architecture={c.architecture!r})"
        )
