"""Common base of the shipped architectures: a JSON-able config and a :class:`ModelSpec`."""

from __future__ import annotations

import torch
from torch import nn

from models.encoders import ConvEncoder, Encoder, ResNetEncoder
from models.errors import ConfigError
from models.spec import ModelSpec, check_normalization, check_output
from models.upsample import Upsample


class Network(nn.Module):
    """A model rebuilt from ``architecture`` + ``config`` (see models.checkpoint)."""

    architecture: str = ""
    encoder: Encoder
    receptive_field: tuple[int, ...]

    def _init_task(self, config: dict) -> None:
        self.config = dict(config)
        self.config["offsets"] = check_output(
            config["output"], config["out_channels"], config.get("offsets")
        )
        if self.config["offsets"] is not None:
            self.config["offsets"] = [list(o) for o in self.config["offsets"]]
        self.config["normalization"] = check_normalization(config.get("normalization"))

    @property
    def spec(self) -> ModelSpec:
        c = self.config
        offsets = c.get("offsets")
        return ModelSpec(
            ndim=self.encoder.ndim,
            in_channels=self.encoder.in_channels,
            out_channels=c["out_channels"],
            output=c["output"],
            size_multiple=tuple(self.encoder.size_multiple),
            receptive_field=tuple(self.receptive_field),
            normalization=dict(c["normalization"]),
            offsets=tuple(tuple(o) for o in offsets) if offsets else None,
        )

    def set_normalization(self, mean: float, std: float) -> None:
        """Record the input normalisation the model is (to be) trained with."""
        self.config["normalization"] = check_normalization({"mean": mean, "std": std})

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass on normalised input followed by the output activation."""
        return torch.sigmoid(self(x))


def build_encoder(
    name: str,
    in_channels: int,
    ndim: int,
    widths,
    scale_factors,
    kernel_sizes,
    down,
    norm,
    activation,
    residual,
    n_convs,
    return_indices: bool,
) -> Encoder:
    """The encoder named in a model config: "conv" (the U-Net one) or a 2D torchvision ResNet."""
    if name == "conv":
        return ConvEncoder(
            in_channels,
            widths,
            ndim,
            scale_factors,
            kernel_sizes,
            down,
            norm,
            activation,
            residual,
            n_convs,
            return_indices,
        )
    if name.startswith("resnet"):
        if ndim != 2:
            raise ConfigError(f"encoder {name!r} is 2D; use encoder='conv' for ndim={ndim}")
        return ResNetEncoder(name, in_channels)
    raise ConfigError(
        f"encoder={name!r} is unknown; use 'conv', 'resnet18', 'resnet34', 'resnet50'"
    )


def up_growth(up: Upsample, coarse_stride: tuple[int, ...], fine_stride: tuple[int, ...]):
    """Receptive-field growth (input voxels per axis) of one upsampling layer."""
    grow = [g * s for g, s in zip(up.conv_growth, fine_stride, strict=True)]
    if up.mode == "transposed":
        k = up.conv.kernel_size
        grow = [(-(-ki // f) - 1) * c for ki, f, c in zip(k, up.factor, coarse_stride, strict=True)]
    elif up.mode == "interp_conv" and up.interpolation == "linear":
        grow = [g + c for g, c in zip(grow, coarse_stride, strict=True)]
    return tuple(grow)


def ratio(coarse: tuple[int, ...], fine: tuple[int, ...]) -> tuple[int, ...]:
    if any(c % f for c, f in zip(coarse, fine, strict=True)):
        raise ConfigError(f"stride {coarse} is not a multiple of stride {fine}")
    return tuple(c // f for c, f in zip(coarse, fine, strict=True))


def add(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def json_config(local: dict) -> dict:
    """A constructor's arguments (its ``locals()``) as JSON-able values (tuples -> lists)."""

    def conv(v):
        if isinstance(v, tuple | list):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return {k: conv(v) for k, v in local.items() if k not in ("self", "__class__")}
