"""Common base of the volumetric architectures (U-Net, FCN): a JSON-able config, a
:class:`ModelSpec`, and the receptive-field arithmetic of their decoders."""

from __future__ import annotations

import torch
from torch import nn

from models.encoders import Encoder, EncoderConfig, build_encoder, encoder_config
from models.errors import ConfigError
from models.spec import ModelSpec, check_normalization, check_output
from models.upsample import Upsample


class Network(nn.Module):
    """A model rebuilt from ``architecture`` + ``config`` (see models.checkpoint)."""

    architecture: str = ""
    encoder: Encoder
    receptive_field: tuple[int, ...]

    def _init_network(self, config: dict, default_encoder: EncoderConfig) -> EncoderConfig:
        """Keep ``config`` (the constructor's arguments) JSON-able as ``self.config`` after
        checking the output kind, offsets and normalisation, and build the encoder it names
        (``default_encoder`` with the given options over it)."""
        encoder = encoder_config(config["encoder"], default_encoder)
        self.config = {**config, "encoder": encoder.to_dict()}
        offsets = check_output(config["output"], config["out_channels"], config["offsets"])
        self.config["offsets"] = [list(o) for o in offsets] if offsets is not None else None
        self.config["normalization"] = check_normalization(config["normalization"])
        check_unpool(config["up"], encoder)
        self.encoder = build_encoder(
            encoder, config["in_channels"], config["ndim"], config["up"] == "max_unpool"
        )
        return encoder

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

    @property
    def aux_channels(self) -> int:
        """Auxiliary output channels after the primary ones (e.g. local shape descriptors):
        trained alongside, never part of a prediction; ``export_model`` drops them."""
        return int(self.config.get("aux_channels", 0) or 0)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass on normalised input followed by the output activation (the primary
        output's channels only)."""
        y = self(x)
        return torch.sigmoid(y[:, : self.config["out_channels"]] if self.aux_channels else y)


def check_unpool(up: str, encoder: EncoderConfig) -> None:
    """Max-unpooling reuses the encoder's pooling indices: only the conv encoder with max-pooling
    has them."""
    if up == "max_unpool" and (encoder.down != "maxpool" or encoder.name != "conv"):
        raise ConfigError(
            "up='max_unpool' reuses the encoder's pooling indices: it needs the 'conv' encoder "
            f"with down='maxpool' (got name={encoder.name!r}, down={encoder.down!r})"
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


def arguments(local: dict) -> dict:
    """A constructor's arguments from its ``locals()`` (without ``self`` and ``__class__``)."""
    return {k: v for k, v in local.items() if k not in ("self", "__class__")}
