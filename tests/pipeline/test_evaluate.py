"""VI split/merge and adapted Rand error: reference values on real data, blockwise == in memory,
known synthetic cases, shape errors, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.evaluate import Contingency, block_contingency, evaluate_arrays, evaluate_volumes
from pipeline.io.volume import create_volume
from tests.conftest import shared_file
from workflows.cli.app import main

REFERENCES = [
    # DATA.md: shipped supervoxels vs neuron ids, gt 0 ignored
    ("fib_medulla_flyem/fib_medulla_train.h5", 2.381, 0.322, 0.335),
    ("gala_fib_example/gala_fib_train.h5", 1.336, 0.121, 0.250),
]


@pytest.mark.realdata
@pytest.mark.parametrize(("path", "split", "merge", "arand"), REFERENCES)
def test_reference_values_blockwise(path, split, merge, arand):
    h5 = shared_file(path)
    scores = evaluate_volumes(
        f"{h5}/volumes/labels/supervoxels",
        f"{h5}/volumes/labels/neuron_ids",
        block_shape=(32, 64, 64),
    )
    assert round(scores["vi_split"], 3) == split
    assert round(scores["vi_merge"], 3) == merge
    assert round(scores["adapted_rand"], 3) == arand
    assert scores["vi_sum"] == pytest.approx(scores["vi_split"] + scores["vi_merge"])


@pytest.mark.realdata
def test_identical_segmentation_scores_zero():
    h5 = shared_file("gala_fib_example/gala_fib_train.h5")
    gt = f"{h5}/volumes/labels/neuron_ids"
    scores = evaluate_volumes(gt, gt)
    assert scores["vi_split"] == 0 and scores["vi_merge"] == 0 and scores["adapted_rand"] == 0


def test_known_split_and_merge():
    gt = np.zeros((4, 4, 4), np.uint64)
    gt[:, :, :2], gt[:, :, 2:] = 1, 2
    split = gt.copy()
    split[:2][split[:2] == 1] = 3  # object 1 cut in two halves: 1 bit for half of the voxels
    s = evaluate_arrays(split, gt)
    assert s["vi_split"] == pytest.approx(0.5) and s["vi_merge"] == pytest.approx(0.0)
    merged = np.ones_like(gt)  # both objects in one segment: 1 bit of merge
    m = evaluate_arrays(merged, gt)
    assert m["vi_merge"] == pytest.approx(1.0) and m["vi_split"] == pytest.approx(0.0)
    # adapted Rand: pairs sum(n_ij^2) - n; precision = (2*32^2 - 64) / (64^2 - 64)
    p = (2 * 32**2 - 64) / (64**2 - 64)
    assert m["adapted_rand"] == pytest.approx(1 - 2 * p / (p + 1))
    assert evaluate_arrays(gt, gt)["vi_sum"] == 0.0


def test_gt_zero_ignored_only_by_option():
    gt = np.zeros((2, 4, 4), np.uint64)
    gt[:, :2] = 1
    seg = np.arange(gt.size, dtype=np.uint64).reshape(gt.shape)  # every voxel its own segment
    seg[gt == 1] = 7
    assert evaluate_arrays(seg, gt, ignore_gt_zero=True)["vi_split"] == 0.0
    assert evaluate_arrays(seg, gt, ignore_gt_zero=False)["vi_split"] > 0.0


def test_blockwise_table_equals_whole_array():
    rng = np.random.default_rng(0)
    seg = rng.integers(0, 50, (20, 30, 40)).astype(np.uint64)
    gt = (seg // 3 + rng.integers(0, 2, seg.shape)).astype(np.uint64)
    whole = evaluate_arrays(seg, gt)
    table = Contingency()
    for z in range(0, 20, 7):
        for x in range(0, 40, 9):
            table.add(*block_contingency(seg[z : z + 7, :, x : x + 9], gt[z : z + 7, :, x : x + 9]))
    for k in ("vi_split", "vi_merge", "adapted_rand"):
        assert table.scores()[k] == pytest.approx(whole[k], abs=1e-12)


def test_shape_mismatch_names_both_shapes(tmp_path, capsys):
    a = create_volume(str(tmp_path / "v.zarr/a"), (4, 8, 8), "uint64", (1, 1, 1), chunks=(4, 8, 8))
    b = create_volume(str(tmp_path / "v.zarr/b"), (4, 8, 9), "uint64", (1, 1, 1), chunks=(4, 8, 9))
    with pytest.raises(InputError, match=r"\(4, 8, 8\).*\(4, 8, 9\)"):
        evaluate_volumes(a.url, b.url)
    with pytest.raises(InputError, match="differs"):
        evaluate_arrays(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))
    assert main(["evaluate", a.url, b.url]) == 2
    err = capsys.readouterr().err
    assert "(4, 8, 8)" in err and "(4, 8, 9)" in err


def test_cli_json(tmp_path, capsys):
    gt = np.zeros((8, 8, 8), np.uint64)
    gt[:4], gt[4:] = 1, 2
    a = create_volume(str(tmp_path / "v.zarr/gt"), gt.shape, "uint64", (1, 1, 1), chunks=(4, 8, 8))
    a.write(a.roi, gt)
    s = create_volume(str(tmp_path / "v.zarr/seg"), gt.shape, "uint64", (1, 1, 1), chunks=(4, 8, 8))
    s.write(s.roi, np.ones_like(gt))
    capsys.readouterr()
    assert main(["evaluate", s.url, a.url, "--json", "--block", "4,4,4"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out) >= {"vi_split", "vi_merge", "vi_sum", "adapted_rand"}
    assert out["vi_merge"] == pytest.approx(1.0) and out["vi_split"] == 0.0
