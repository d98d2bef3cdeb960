"""One JSON-able record for every encoder a model can use: :class:`EncoderConfig`.

``name`` picks a registered encoder (models.encoders.registry); the other fields are the options
of the convolutional encoder (the ResNets' stages are fixed and ignore them). The U-Net decoder
repeats the encoder's block options (norm, activation, residual, convolutions per block).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

from models.errors import ConfigError
from models.records import jsonable, refuse_unknown


def _frozen(value):
    """Lists (from JSON or YAML) as tuples, so equal configs compare equal."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class EncoderConfig:
    """Which encoder a model uses and how it is built.

    - ``widths``: channels per stage (their number is the depth);
    - ``scale_factors``: downsampling between stages, an int or a per-axis tuple for all of them,
      or one entry per step (e.g. ``[(1, 2, 2), (2, 2, 2)]`` for data with thick sections);
    - ``kernel_sizes``: convolution kernel per stage, one value or one per stage;
    - ``down``: "maxpool" or "strided" (a learned convolution);
    - ``norm``, ``activation``, ``residual``, ``n_convs``: the blocks of every stage.
    """

    name: str = "conv"
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    scale_factors: int | tuple = 2
    kernel_sizes: int | tuple = 3
    down: str = "maxpool"
    norm: str | None = "batch"
    activation: str | None = "relu"
    residual: bool = False
    n_convs: int = 2

    def __post_init__(self) -> None:
        for f in ("widths", "scale_factors", "kernel_sizes"):
            object.__setattr__(self, f, _frozen(getattr(self, f)))

    @classmethod
    def from_dict(cls, options: Mapping) -> EncoderConfig:
        """The config of a mapping of options; unknown keys are refused."""
        refuse_unknown(options, cls, "encoder")
        return cls(**options)

    def to_dict(self) -> dict:
        """JSON-able options (tuples as lists), as checkpoints store them."""
        return jsonable(asdict(self))


def encoder_config(given: EncoderConfig | Mapping | None, default: EncoderConfig) -> EncoderConfig:
    """``given`` as a config: itself, or a mapping of options over ``default`` (a model's own
    default encoder), or ``default`` when None."""
    if given is None:
        return default
    if isinstance(given, EncoderConfig):
        return given
    if not isinstance(given, Mapping):
        raise ConfigError(
            f"encoder={given!r}: give an EncoderConfig or a mapping of its options, e.g. "
            "{'name': 'conv', 'widths': [16, 32, 64]}"
        )
    EncoderConfig.from_dict(given)  # unknown options named before they are merged
    return replace(default, **given)
