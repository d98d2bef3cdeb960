"""Bad input to predict is refused early with a message that names the input and the fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models.checkpoint import save_checkpoint
from models.spec import ModelSpec
from models.unet import UNet
from pipeline.errors import BlockFailures, CheckpointError, InputError
from pipeline.io.volume import create_volume, open_volume
from pipeline.provenance import provenance
from pipeline.stages.predict import plan_predict, predict, predict_array
from tests.support.predict import tiny_net, write_input


@pytest.fixture()
def raw_url(tmp_path) -> str:
    raw = np.random.default_rng(0).integers(0, 255, (16, 32, 32), dtype=np.uint8)
    return write_input(str(tmp_path / "in.zarr" / "raw"), raw)


def test_unconvertible_input_dtypes_are_refused(tmp_path):
    url = str(tmp_path / "in.zarr" / "mask")
    create_volume(url, (16, 16, 16), "bool", (10, 10, 10), chunks=(16, 16, 16))
    with pytest.raises(InputError, match=r"mask: input dtype bool cannot be read"):
        plan_predict(tiny_net(), url, str(tmp_path / "o.zarr" / "p"), patch=(16, 16, 16))
    with pytest.raises(InputError, match="complex128 cannot be read as intensities"):
        predict_array(tiny_net(), np.zeros((8, 8, 8), np.complex128), patch=(8, 8, 8))


def test_nan_input_is_refused_with_the_first_bad_voxel(tmp_path, client):
    raw = np.random.default_rng(1).random((16, 32, 32)).astype(np.float32) * 255
    raw[9, 20, 30] = np.nan
    raw[12, 3, 4] = np.inf
    with pytest.raises(InputError, match=r"NaN/inf values \(2 in .*\(9, 20, 30\)"):
        predict_array(tiny_net(), raw, patch=(16, 16, 16))
    url = write_input(str(tmp_path / "in.zarr" / "raw"), raw)
    out = str(tmp_path / "o.zarr" / "p")
    with pytest.raises(BlockFailures) as info:
        predict(
            tiny_net(), url, out, client=client, progress=False, patch=(16, 16, 16),
            block=(16, 16, 16), dtype="float32",
        )  # fmt: skip
    # the first error reported names the first bad voxel its block reads: block 0 (y, x < 24)
    # meets the inf at (12, 3, 4); blocks 1 and 3 (x >= 8, y >= 0 / 8) the NaN at (9, 20, 30)
    message = str(info.value)
    assert "3 block(s) failed" in message and "in.zarr/raw holds NaN/inf" in message
    assert "(12, 3, 4), (120, 30, 40) nm" in message or "(9, 20, 30), (90, 200, 300) nm" in message
    # the one block whose patches never see a bad voxel was predicted; the others were not
    written = open_volume(out).read()
    assert np.isfinite(written).all() and written[:, 16:, :16].std() > 0
    assert (written[:, :16, :16] == 0).all()


def test_patch_that_does_not_fit_the_network_is_refused(raw_url, tmp_path):
    net = tiny_net(widths=(4, 8, 16))  # two poolings: sizes must be multiples of 4
    out = str(tmp_path / "o.zarr" / "p")
    with pytest.raises(InputError, match=r"multiples of \(4, 4, 4\).*use e\.g\. \(16, 16, 20\)"):
        plan_predict(net, raw_url, out, patch=(16, 16, 18))
    with pytest.raises(InputError, match=r"at least \(4, 4, 4\)"):
        plan_predict(net, raw_url, out, patch=(2, 16, 16))


def test_block_smaller_than_the_patch_is_refused(raw_url, tmp_path):
    with pytest.raises(InputError, match=r"--block \(8, 32, 32\) is smaller than the patch.* z"):
        plan_predict(
            tiny_net(), raw_url, str(tmp_path / "o.zarr" / "p"), patch=(16, 16, 16),
            block=(8, 32, 32), chunks=(8, 16, 16),
        )  # fmt: skip


def test_existing_output_of_another_shape_or_dtype_is_refused(raw_url, tmp_path):
    out = str(tmp_path / "o.zarr" / "p")
    earlier = {"petaseg": provenance("predict", {})}  # an earlier predict output of another grid
    create_volume(out, (16, 32, 32), "float32", (10, 10, 10), chunks=(16, 16, 16), attrs=earlier)
    with pytest.raises(InputError, match=r"o\.zarr/p exists with .*remove it or write to another"):
        plan_predict(tiny_net(), raw_url, out, patch=(16, 16, 16), dtype="uint8")
    other = str(tmp_path / "o.zarr" / "q")
    create_volume(other, (16, 32, 48), "uint8", (10, 10, 10), chunks=(16, 16, 16), attrs=earlier)
    with pytest.raises(InputError, match="exists with"):
        plan_predict(tiny_net(), raw_url, other, patch=(16, 16, 16))
    theirs = str(tmp_path / "o.zarr" / "theirs")  # the same grid, but not petaseg's
    create_volume(theirs, (16, 32, 32), "uint8", (10, 10, 10), chunks=(16, 16, 16))
    with pytest.raises(InputError, match="written by something other than petaseg"):
        plan_predict(tiny_net(), raw_url, theirs, patch=(16, 16, 16))


def test_wrong_channel_count_is_refused(tmp_path):
    url = str(tmp_path / "in.zarr" / "two")
    create_volume(url, (16, 16, 16), "uint8", (10, 10, 10), chunks=(16, 16, 16), channels=2)
    with pytest.raises(InputError, match=r"has 2 channel\(s\) but model UNet takes 1"):
        plan_predict(tiny_net(), url, str(tmp_path / "o.zarr" / "p"), patch=(16, 16, 16))


def test_bad_options_are_refused(raw_url, tmp_path):
    out = str(tmp_path / "o.zarr" / "p")
    with pytest.raises(InputError, match=r"--overlap 1.0"):
        plan_predict(tiny_net(), raw_url, out, patch=(16, 16, 16), overlap=1.0)
    with pytest.raises(InputError, match=r"--dtype 'int16'"):
        plan_predict(tiny_net(), raw_url, out, patch=(16, 16, 16), dtype="int16")
    affinity = UNet(
        encoder={"widths": (4, 8)}, out_channels=3, output="affinity",
        offsets=[[-1, 0, 0], [0, -1, 0], [0, 0, -1]],
    )  # fmt: skip
    with pytest.raises(InputError, match="drop --tta for affinity models"):
        plan_predict(affinity, raw_url, out, patch=(16, 16, 16), tta=True)


def test_network_that_is_not_same_padded_is_refused():
    spec = ModelSpec(3, 1, 1, "boundary", (1, 1, 1), (3, 3, 3))
    valid = nn.Conv3d(1, 1, 3)  # 'valid' convolution: the output is smaller than the input
    with pytest.raises(InputError, match="'same'-padded network"):
        predict_array(valid, np.zeros((8, 8, 8), np.uint8), patch=(8, 8, 8), spec=spec)
    with pytest.raises(InputError, match="has no .spec; pass spec="):
        predict_array(valid, np.zeros((8, 8, 8), np.uint8), patch=(8, 8, 8))
    same = nn.Conv3d(1, 1, 3, padding=1)  # any 'same'-padded torch network works with a spec
    out = predict_array(same, np.ones((8, 8, 8), np.uint8), patch=(4, 4, 4), spec=spec)
    assert out.shape == (1, 8, 8, 8) and np.isfinite(out).all()


def test_missing_or_corrupt_checkpoints_are_clear_errors(raw_url, tmp_path):
    out = str(tmp_path / "o.zarr" / "p")
    with pytest.raises(CheckpointError, match="no-such-model.*neither a shipped model"):
        plan_predict("no-such-model", raw_url, out)
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        plan_predict(str(bad), raw_url, out)


def test_cli_runs_resumes_and_reports_errors(raw_url, tmp_path, capsys):
    from workflows.cli.app import main

    torch.manual_seed(0)
    ckpt = tmp_path / "net.pt"
    save_checkpoint(ckpt, tiny_net())
    out = str(tmp_path / "o.zarr" / "cli")
    args = ["predict", "--model", str(ckpt), "--input", raw_url, "--output", out]
    args += ["--patch", "16,16,16", "--block", "16,32,32", "--chunks", "16,16,16"]
    args += ["--dtype", "float32", "--cluster", "threads:1", "--json"]
    assert main(args) == 0
    assert '"blocks_run": 1' in capsys.readouterr().out
    assert open_volume(out).attrs["petaseg"]["model"]["checkpoint"] == str(ckpt)
    assert main(args) == 0
    assert '"blocks_run": 0' in capsys.readouterr().out
    assert main([*args[:5], "--output", str(tmp_path / "o.zarr" / "x"), "--patch", "15"]) == 2
    assert "multiples of (2, 2, 2)" in capsys.readouterr().err
