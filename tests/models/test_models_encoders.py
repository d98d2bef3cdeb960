"""The encoder registry and contract: clear errors for unknown names and options, every
registered encoder returns the maps it declares, a registered encoder serves every head."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from models.checkpoint import load_checkpoint, save_checkpoint
from models.encoders import (
    ENCODERS,
    Encoder,
    EncoderConfig,
    FeatureList,
    encoder_config,
    get_encoder,
    register_encoder,
)
from models.errors import ConfigError
from models.tasks import build_two_stage
from models.unet import UNet

torch.set_num_threads(1)


def test_unknown_names_and_options_are_clear_errors():
    with pytest.raises(ConfigError, match=r"encoder 'vgg16' is unknown; use one of \['conv', "):
        get_encoder("vgg16")
    with pytest.raises(ConfigError, match=r"unknown encoder option\(s\) \['depht'\]"):
        get_encoder("conv", depht=4)
    with pytest.raises(ConfigError, match="'resnet18' is 2D; use the 'conv' encoder for ndim=3"):
        get_encoder("resnet18", ndim=3)
    with pytest.raises(ConfigError, match="give an EncoderConfig or a mapping"):
        encoder_config("resnet18", EncoderConfig())
    with pytest.raises(ConfigError, match="unknown"):
        UNet(encoder={"name": "transformer"})


@pytest.mark.parametrize("name,ndim", [(n, 2) for n in sorted(ENCODERS)] + [("conv", 3)])
def test_every_registered_encoder_keeps_the_contract(name, ndim):
    torch.manual_seed(0)
    options = {"widths": (3, 5, 7, 9), "scale_factors": [2, (1, 2, 2), 2]} if ndim == 3 else {}
    if name == "conv" and ndim == 2:
        options = {"widths": (3, 5, 7)}
    enc = get_encoder(name, 2, ndim, return_indices=True, **options)
    assert isinstance(enc, Encoder) and enc.ndim == ndim and enc.in_channels == 2
    size = (8, 32, 32)[-ndim:] if ndim == 3 else (64, 96)
    feats = enc.eval()(torch.rand(1, 2, *size))
    assert isinstance(feats, FeatureList)
    n = len(feats)
    assert n == len(enc.out_channels) == len(enc.strides) == len(enc.receptive_fields)
    assert len(feats.indices) == n
    for i, f in enumerate(feats):
        assert f.shape[1] == enc.out_channels[i]
        assert tuple(f.shape[2:]) == tuple(
            s // r for s, r in zip(size, enc.strides[i], strict=True)
        )
        if i:
            assert all(a <= b for a, b in zip(enc.strides[i - 1], enc.strides[i], strict=True))
            rf = zip(enc.receptive_fields[i - 1], enc.receptive_fields[i], strict=True)
            assert all(a < b for a, b in rf)
    assert enc.size_multiple == enc.strides[-1]
    if enc.returns_indices:  # pooling map i to map i + 1: map i's channels, map i+1's size
        for i in range(n - 1):
            pooled = (1, enc.out_channels[i], *feats[i + 1].shape[2:])
            assert tuple(feats.indices[i].shape) == pooled
    else:
        assert all(idx is None for idx in feats.indices)
    assert enc.returns_indices == (name == "conv")


class PyramidEncoder(Encoder):
    """A minimal encoder outside the library: 1x1 projection, then average-pooled stages."""

    def __init__(self, config: EncoderConfig, in_channels: int, ndim: int) -> None:
        super().__init__()
        self.ndim, self.in_channels = ndim, in_channels
        self.out_channels = [int(w) for w in config.widths]
        self.strides = [(2**i,) * ndim for i in range(len(self.out_channels))]
        self.receptive_fields = [(2 ** (i + 1) - 1,) * ndim for i in range(len(self.out_channels))]
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        chans = [in_channels, *self.out_channels]
        self.convs = nn.ModuleList(conv(a, b, 1) for a, b in zip(chans, chans[1:], strict=False))

    def forward(self, x: torch.Tensor) -> FeatureList:
        self.check_input(x)
        pool = nn.functional.avg_pool2d if self.ndim == 2 else nn.functional.avg_pool3d
        maps = []
        for i, conv in enumerate(self.convs):
            x = conv(pool(x, 2) if i else x)
            maps.append(x)
        return FeatureList(maps)


def _pyramid(config: EncoderConfig, in_channels: int, ndim: int, indices: bool) -> Encoder:
    return PyramidEncoder(config, in_channels, ndim)


def test_a_registered_encoder_serves_every_head_and_round_trips(tmp_path, monkeypatch):
    monkeypatch.setattr("models.encoders.registry.ENCODERS", dict(ENCODERS))  # undone after
    register_encoder("pyramid", _pyramid)
    torch.manual_seed(0)
    unet = UNet(ndim=2, encoder={"name": "pyramid", "widths": (4, 8, 8)}, output="logits").eval()
    x = torch.rand(1, 1, 32, 32)
    assert unet(x).shape == (1, 1, 32, 32)
    save_checkpoint(tmp_path / "u.pt", unet)
    with torch.no_grad():
        assert torch.equal(load_checkpoint(tmp_path / "u.pt")(x), unet(x))
    detector = build_two_stage(1, encoder={"name": "pyramid", "widths": (8, 8, 8, 8, 8)})
    detector.train()
    box = {"boxes": torch.tensor([[4.0, 4, 20, 20]]), "labels": torch.tensor([1])}
    terms = detector.losses([torch.rand(1, 64, 64)], [box])
    assert all(torch.isfinite(v) for v in terms.values())


def test_encoder_config_is_json_and_fills_a_models_defaults():
    config = EncoderConfig(widths=[4, 8], scale_factors=[[1, 2, 2]], norm=None)
    text = json.dumps(config.to_dict())
    assert EncoderConfig.from_dict(json.loads(text)) == config
    assert config.widths == (4, 8) and config.scale_factors == ((1, 2, 2),)
    default = EncoderConfig(widths=(12, 24, 48))
    assert encoder_config(None, default) is default
    assert encoder_config({"norm": "group"}, default) == EncoderConfig(
        widths=(12, 24, 48), norm="group"
    )
    assert encoder_config(config, default) is config
