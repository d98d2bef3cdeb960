"""Layers, upsampling variants, U-Net and FCN shapes (2D and anisotropic 3D), input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.encoders import get_encoder
from models.errors import ConfigError, InputError
from models.fcn import FCN
from models.layers import ConvBlock, MaxPoolDown, StridedConvDown, make_downsample
from models.unet import UNet
from models.upsample import UPSAMPLING, Upsample

torch.set_num_threads(1)


def test_transposed_conv_all_ones_3x3_stride_2_stamps_the_kernel():
    up = Upsample("transposed", 1, 1, factor=2, ndim=2, kernel_size=3, exact_factor=False)
    with torch.no_grad():
        up.conv.weight.fill_(1.0)
        up.conv.bias.zero_()
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])[None, None]
    expected = torch.tensor(
        [
            [1.0, 1.0, 3.0, 2.0, 2.0],
            [1.0, 1.0, 3.0, 2.0, 2.0],
            [4.0, 4.0, 10.0, 6.0, 6.0],
            [3.0, 3.0, 7.0, 4.0, 4.0],
            [3.0, 3.0, 7.0, 4.0, 4.0],
        ]
    )
    out = up(x)[0, 0]
    assert torch.equal(out, expected)
    # exact_factor trims the overhang so the output is exactly 2x the input: rows/cols 1..4
    exact = Upsample("transposed", 1, 1, factor=2, ndim=2, kernel_size=3)
    exact.load_state_dict(up.state_dict())
    assert torch.equal(exact(x)[0, 0], expected[1:, 1:])


def test_max_unpool_puts_values_at_the_remembered_indices_2d():
    x = torch.tensor(
        [
            [1.0, 9.0, 2.0, 0.0],
            [3.0, 4.0, 5.0, 8.0],
            [7.0, 0.0, 1.0, 1.0],
            [2.0, 6.0, 3.0, 2.0],
        ]
    )[None, None]
    pooled, idx = MaxPoolDown(2, ndim=2, return_indices=True)(x)
    assert pooled[0, 0].tolist() == [[9.0, 8.0], [7.0, 3.0]]
    out = Upsample("max_unpool", 1, 1, 2, ndim=2)(pooled, indices=idx)
    expected = torch.tensor(
        [
            [0.0, 9.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 8.0],
            [7.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 3.0, 0.0],
        ]
    )
    assert torch.equal(out[0, 0], expected)


def test_max_unpool_3d_anisotropic_inverts_pooling_positions():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 4, 8, 6, generator=g)
    pool = MaxPoolDown((1, 2, 2), ndim=3, return_indices=True)
    pooled, idx = pool(x)
    assert pooled.shape == (2, 3, 4, 4, 3)
    out = Upsample("max_unpool", 3, 3, (1, 2, 2), ndim=3)(pooled, indices=idx)
    assert out.shape == x.shape
    flat_out, flat_x = out.flatten(2), x.flatten(2)
    assert torch.equal(flat_out.gather(2, idx.flatten(2)), pooled.flatten(2))
    assert torch.equal(flat_x.gather(2, idx.flatten(2)), pooled.flatten(2))
    assert int((out != 0).sum()) == pooled.numel()  # everything else is zero


def test_max_unpool_without_indices_is_a_clear_error():
    with pytest.raises(InputError, match="indices"):
        Upsample("max_unpool", 1, 1, 2, ndim=2)(torch.ones(1, 1, 2, 2))


@pytest.mark.parametrize("ndim,factor", [(2, (2, 3)), (3, (1, 2, 2))])
def test_bed_of_nails_is_zero_except_one_position_per_cell(ndim, factor):
    x = torch.rand((1, 2) + (3,) * ndim) + 0.5  # all nonzero
    out = Upsample("bed_of_nails", 2, 2, factor, ndim=ndim)(x)
    assert out.shape[2:] == tuple(3 * f for f in factor)
    first = (slice(None), slice(None)) + tuple(slice(None, None, f) for f in factor)
    assert torch.equal(out[first], x)
    cells = out.reshape((1, 2) + sum(((3, f) for f in factor), ()))
    nonzero_per_cell = (cells != 0).sum(dim=tuple(range(3, 3 + 2 * ndim, 2)))
    assert torch.all(nonzero_per_cell == 1)


@pytest.mark.parametrize("mode", UPSAMPLING)
@pytest.mark.parametrize("ndim", [2, 3])
def test_every_upsampling_mode_shape(mode, ndim):
    factor = (2, 2) if ndim == 2 else (1, 2, 2)
    x = torch.rand((2, 4) + (2, 3, 5)[-ndim:])
    kwargs = {}
    if mode == "max_unpool":
        big = torch.rand((2, 3) + tuple(s * f for s, f in zip(x.shape[2:], factor, strict=False)))
        _, kwargs["indices"] = MaxPoolDown(factor, ndim, return_indices=True)(big)
    out = Upsample(mode, 4, 3, factor, ndim=ndim)(x, **kwargs)
    assert out.shape == (2, 3) + tuple(s * f for s, f in zip(x.shape[2:], factor, strict=False))


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("down", ["maxpool", "strided"])
def test_every_downsampling_shape(ndim, down):
    factor = (2, 2) if ndim == 2 else (1, 2, 2)
    x = torch.rand((1, 4) + (4, 8, 6)[-ndim:])
    layer = make_downsample(down, 4, factor, ndim, return_indices=down == "maxpool")
    out = layer(x)
    y = out[0] if down == "maxpool" else out
    assert y.shape == (1, 4) + tuple(s // f for s, f in zip(x.shape[2:], factor, strict=False))
    assert isinstance(layer, MaxPoolDown if down == "maxpool" else StridedConvDown)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("down", ["maxpool", "strided"])
@pytest.mark.parametrize("up", UPSAMPLING)
def test_unet_output_shape_for_every_variant(ndim, down, up):
    factors = 2 if ndim == 2 else [(1, 2, 2), (2, 2, 2)]
    encoder = {"widths": (2, 4, 8), "scale_factors": factors, "down": down}
    kwargs = dict(ndim=ndim, encoder=encoder, up=up)
    if up == "max_unpool" and down == "strided":
        with pytest.raises(ConfigError, match="maxpool"):
            UNet(**kwargs)
        return
    net = UNet(in_channels=2, out_channels=3, output="logits", **kwargs)
    shape = (8, 12) if ndim == 2 else (4, 8, 12)
    y = net(torch.rand((2, 2) + shape))
    assert y.shape == (2, 3) + shape
    assert net.spec.size_multiple == ((4, 4) if ndim == 2 else (2, 4, 4))


@pytest.mark.parametrize("skip", ["concat", "add"])
def test_unet_skips_and_residual_blocks(skip):
    encoder = {"widths": (2, 4), "residual": True, "kernel_sizes": [(1, 3, 3), 3]}
    net = UNet(ndim=3, encoder=encoder, skip=skip)
    assert net(torch.rand(1, 1, 4, 4, 4)).shape == (1, 1, 4, 4, 4)
    assert net.encoder.blocks[0].kernel_size == (1, 3, 3)


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("up", UPSAMPLING)
def test_fcn_variants_shapes(variant, ndim, up):
    net = FCN(ndim=ndim, variant=variant, encoder={"widths": (2,) * 6}, up=up, out_channels=3)
    shape = (32, 64) if ndim == 2 else (32, 32, 32)
    assert net(torch.rand((2, 1) + shape)).shape == (2, 3) + shape
    assert net.spec.size_multiple == (32,) * ndim
    assert len(net.levels) == {"32s": 1, "16s": 2, "8s": 3}[variant]


def test_fcn_max_unpool_puts_scores_only_where_the_first_pooling_kept_its_maxima():
    torch.manual_seed(0)
    net = FCN(ndim=2, variant="32s", encoder={"widths": (2,) * 6}, up="max_unpool", out_channels=2)
    net.eval()
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        feats = net.encoder(x)
        path = net.final_up
        assert len(path.steps) == 5 and path.levels == [4, 3, 2, 1, 0]
        # the last unpooling puts values only where the first max-pooling took its maxima
        y = net.scores[-1](feats[5])
        for step, fill, i in zip(path.steps, path.fills, path.levels, strict=True):
            y = step(y, indices=feats.indices[i], output_size=feats[i].shape[2:])
            if i:
                y = fill(y)
        kept = torch.zeros(1, 2, 64, 64, dtype=torch.bool)
        kept.view(1, 2, -1).scatter_(2, feats.indices[0].view(1, 2, -1), True)
        assert y.shape == (1, 2, 64, 64) and (y != 0).any() and not (y != 0)[~kept].any()
        assert int(kept.sum()) == 2 * 32 * 32  # one kept position per 2 x 2 window
        assert net(x).shape == (1, 2, 64, 64)


def test_fcn_refuses_max_unpool_without_indices_and_too_shallow_encoders():
    with pytest.raises(ConfigError, match="max_unpool"):
        FCN(up="max_unpool", encoder={"down": "strided"})
    with pytest.raises(ConfigError, match="coarsest"):
        FCN(encoder={"widths": (2, 2)}, variant="8s")


@pytest.mark.parametrize("arch", [UNet, FCN])
def test_heads_on_a_resnet_encoder(arch):
    net = arch(ndim=2, encoder={"name": "resnet18"}, out_channels=2, output="logits")
    assert net(torch.rand(1, 1, 64, 64)).shape == (1, 2, 64, 64)
    assert net.encoder.strides == [(2, 2), (4, 4), (8, 8), (16, 16), (32, 32)]
    assert net.encoder.receptive_fields[-1] == (435, 435)  # the published ResNet-18 figure


def test_encoder_contract_channels_and_strides():
    enc = get_encoder("conv", 1, 3, widths=(3, 5, 7), scale_factors=[(1, 2, 2), (2, 2, 2)])
    feats = enc(torch.rand(1, 1, 4, 8, 8))
    assert [f.shape[1] for f in feats] == enc.out_channels == [3, 5, 7]
    assert enc.strides == [(1, 1, 1), (1, 2, 2), (2, 4, 4)]
    for f, s in zip(feats, enc.strides, strict=True):
        assert tuple(f.shape[2:]) == tuple(n // k for n, k in zip((4, 8, 8), s, strict=False))


def test_conv_block_same_padding_and_unknown_names():
    block = ConvBlock(1, 4, ndim=3, kernel_size=(1, 3, 5), norm="group", activation="elu")
    assert block(torch.rand(1, 1, 3, 5, 7)).shape == (1, 4, 3, 5, 7)
    with pytest.raises(ConfigError, match="norm"):
        ConvBlock(1, 2, norm="layer")
    with pytest.raises(ConfigError, match="activation"):
        ConvBlock(1, 2, activation="swish2")
    with pytest.raises(ConfigError, match="even"):
        ConvBlock(1, 2, kernel_size=2)
    with pytest.raises(ConfigError, match="up="):
        Upsample("bilinear_magic", 1, 1)
    with pytest.raises(ConfigError, match="down="):
        make_downsample("avg", 1, 2)


def test_input_size_not_fitting_the_stride_names_sizes_and_multiple():
    net = UNet(ndim=3, encoder={"widths": (2, 4, 8), "scale_factors": [(1, 2, 2), (2, 2, 2)]})
    with pytest.raises(InputError) as err:
        net(torch.rand(1, 1, 5, 16, 18))
    msg = str(err.value)
    assert "(5, 16, 18)" in msg and "(2, 4, 4)" in msg and "(6, 16, 20)" in msg


def test_wrong_channel_count_and_rank_are_clear_errors():
    net = UNet(ndim=2, encoder={"widths": (2, 4)}, in_channels=1)
    with pytest.raises(InputError, match="2 channel"):
        net(torch.rand(1, 2, 8, 8))
    with pytest.raises(InputError, match="4D tensor"):
        net(torch.rand(1, 1, 8, 8, 8))


def test_receptive_field_formula_bounds_the_measured_one():
    """The analytical field of view matches the gradient footprint of one output voxel."""
    torch.manual_seed(0)
    encoder = {"widths": (4, 8, 8), "norm": None, "activation": "leaky_relu"}
    net = UNet(ndim=2, encoder=encoder, output="logits")
    net.eval()
    size = 96
    x = torch.rand(1, 1, size, size, requires_grad=True)
    net(x)[0, 0, size // 2, size // 2].backward()
    rows = np.flatnonzero(x.grad[0, 0].abs().sum(1).numpy())
    measured = rows.max() - rows.min() + 1
    rf = net.spec.receptive_field[0]
    assert measured <= rf
    assert measured >= rf - 4  # within one pooling cell of the coarsest level
