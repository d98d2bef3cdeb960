"""The encoders a model config can name, and the one way to build them: ``get_encoder``.

Each registered builder takes ``(config, in_channels, ndim, return_indices)`` and returns an
:class:`Encoder` that keeps the contract of models.encoders.contract. ``register_encoder`` adds
one (a new backbone for every head at once).
"""

from __future__ import annotations

from collections.abc import Callable

from models.encoders.config import EncoderConfig
from models.encoders.contract import Encoder
from models.encoders.conv import ConvEncoder
from models.encoders.resnet import RESNETS, ResNetEncoder
from models.errors import ConfigError

EncoderBuilder = Callable[[EncoderConfig, int, int, bool], Encoder]


def conv_encoder(
    config: EncoderConfig, in_channels: int, ndim: int, return_indices: bool
) -> Encoder:
    return ConvEncoder(config, in_channels, ndim, return_indices)


def resnet_encoder(
    config: EncoderConfig, in_channels: int, ndim: int, return_indices: bool
) -> Encoder:
    if ndim != 2:
        raise ConfigError(f"encoder {config.name!r} is 2D; use the 'conv' encoder for ndim={ndim}")
    return ResNetEncoder(config.name, in_channels)


ENCODERS: dict[str, EncoderBuilder] = {"conv": conv_encoder}
ENCODERS.update((name, resnet_encoder) for name in RESNETS)


def register_encoder(name: str, builder: EncoderBuilder) -> None:
    """Make ``name`` usable in every model config (``EncoderConfig(name=...)``)."""
    ENCODERS[name] = builder


def build_encoder(
    config: EncoderConfig, in_channels: int = 1, ndim: int = 2, return_indices: bool = False
) -> Encoder:
    """The encoder ``config`` describes, taking ``in_channels`` channels of ``ndim``-D data;
    ``return_indices`` asks for the max-pooling indices (for max-unpooling decoders)."""
    builder = ENCODERS.get(config.name)
    if builder is None:
        raise ConfigError(f"encoder {config.name!r} is unknown; use one of {sorted(ENCODERS)}")
    return builder(config, in_channels, ndim, return_indices)


def get_encoder(
    name: str, in_channels: int = 1, ndim: int = 2, return_indices: bool = False, **options
) -> Encoder:
    """The registered encoder ``name`` with :class:`EncoderConfig` ``options``, e.g.
    ``get_encoder("conv", 1, 3, widths=[8, 16, 32], scale_factors=[(1, 2, 2), 2])``."""
    return build_encoder(
        EncoderConfig.from_dict({"name": name, **options}), in_channels, ndim, return_indices
    )
