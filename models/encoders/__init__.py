"""Encoders: the contract every decoder and head relies on, one JSON-able config record, and one
registry of named encoders ("conv", "resnet18", "resnet34", "resnet50") built by
:func:`get_encoder` / :func:`build_encoder`."""

from models.encoders.config import EncoderConfig, encoder_config
from models.encoders.contract import Encoder, FeatureList
from models.encoders.conv import ConvEncoder
from models.encoders.registry import ENCODERS, build_encoder, get_encoder, register_encoder
from models.encoders.resnet import ResNetEncoder

__all__ = [
    "ENCODERS",
    "ConvEncoder",
    "Encoder",
    "EncoderConfig",
    "FeatureList",
    "ResNetEncoder",
    "build_encoder",
    "encoder_config",
    "get_encoder",
    "register_encoder",
]
