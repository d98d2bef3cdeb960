"""Model configs in the layouts older petaseg versions wrote, translated to today's on reading.

Checkpoints and training configs (YAML) written before the one encoder config keep loading:

- U-Net, FCN and the semantic net kept the encoder options flat beside the model's own
  (``widths``, ``norm``, ``down``, ... and ``encoder: "conv"``); they move into ``encoder``.
- The 2D heads kept an ``encoder`` dict whose registered name was under the key ``"encoder"``;
  it becomes ``"name"``.

A config already in today's layout passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

from models.encoders import EncoderConfig

ENCODER_OPTIONS = tuple(f.name for f in fields(EncoderConfig) if f.name != "name")
FLAT = ("unet", "fcn", "semantic")  # architectures whose encoder options were flat
NESTED = ("localize", "detect", "instance", "grid_detect")  # encoder dict with "encoder" key


def upgrade_config(architecture: str, config: Mapping) -> dict:
    """``config`` of a model of ``architecture`` in today's layout."""
    if architecture in FLAT:
        return _nest_encoder(config)
    if architecture in NESTED:
        return _rename_encoder(config)
    return dict(config)


def _nest_encoder(config: Mapping) -> dict:
    """{"widths": [..], "norm": .., "encoder": "conv", ...} -> {"encoder": {"name": "conv",
    "widths": [..], "norm": ..}, ...}."""
    out = dict(config)
    name = out.get("encoder")
    if isinstance(name, Mapping):
        return out
    options = {k: out.pop(k) for k in ENCODER_OPTIONS if k in out}
    if name is not None or options:
        out["encoder"] = {"name": name if name is not None else "conv", **options}
    return out


def _rename_encoder(config: Mapping) -> dict:
    """{"encoder": {"encoder": "conv", ...}} -> {"encoder": {"name": "conv", ...}}."""
    out = dict(config)
    encoder = out.get("encoder")
    if isinstance(encoder, Mapping) and "encoder" in encoder:
        encoder = dict(encoder)
        encoder["name"] = encoder.pop("encoder")
        out["encoder"] = encoder
    return out
