"""``petaseg bench scale``: the mirror tiling it measures on, and one end-to-end run at 1e6 voxels
(stand-in boundary map, igneous beside it) that prints the JSON object last."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.bench_scale import block_slices, shape_for, tiled_block
from tests.conftest import REPO, shared_file


def whole(base: np.ndarray, shape: tuple[int, ...], labels: bool) -> np.ndarray:
    return tiled_block(base, tuple(slice(0, s) for s in shape), labels)


def test_mirror_tiling_is_numpy_symmetric_padding_and_blockwise_equals_whole():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (5, 7, 6), dtype=np.uint8)
    shape = (13, 16, 20)  # up to three tiles and a partial one per axis
    full = whole(base, shape, labels=False)
    pad = [(0, s - b) for s, b in zip(shape, base.shape, strict=True)]
    np.testing.assert_array_equal(full, np.pad(base, pad, mode="symmetric"))
    pieces = np.zeros(shape, np.uint8)
    for sl in block_slices(shape, (4, 8, 7)):
        pieces[sl] = tiled_block(base, sl, labels=False)
    np.testing.assert_array_equal(pieces, full)


def test_tiled_labels_keep_shapes_and_get_unique_ids_per_tile():
    base = np.zeros((4, 4, 4), np.uint64)
    base[:2], base[2:, :2] = 3, 7  # two objects and background
    shape = (8, 4, 12)  # 2 x 1 x 3 tiles
    out = whole(base, shape, labels=True)
    assert (out == 0).sum() == 6 * (base == 0).sum()  # background stays background
    ids = np.unique(out[out > 0])
    assert len(ids) == 6 * 2  # each object once per tile, never shared between tiles
    tiled = np.pad(base, [(0, 4), (0, 0), (0, 8)], mode="symmetric")
    for i in ids:  # every id is one object of one tile
        assert len(np.unique(tiled[out == i])) == 1
    blocks = np.zeros(shape, np.uint64)
    for sl in block_slices(shape, (3, 4, 5)):
        blocks[sl] = tiled_block(base, sl, labels=True)
    np.testing.assert_array_equal(blocks, out)


def test_shapes_scale_every_side_by_one_factor():
    base = (160, 250, 250)
    for voxels in (1e7, 1e8, 1e9):
        shape = shape_for(int(voxels), base)
        assert abs(np.prod(shape) / voxels - 1) < 0.01
        assert abs(shape[1] / shape[0] - 250 / 160) < 0.02


@pytest.mark.slow
def test_bench_scale_runs_end_to_end_and_prints_json_last(tmp_path):
    shared_file("fib_medulla_flyem/fib_medulla_train.h5")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PETASEG_BENCH_SCALE_SIZES": "1e6",
        "PETASEG_BENCH_SCALE_MODEL": "0",
        "PETASEG_BENCH_SCALE_WARMUP": "0",
        "PETASEG_BENCH_SCALE_PNG": str(tmp_path / "scale.png"),
        "TMPDIR": str(tmp_path),
    }
    cmd = [sys.executable, "-m", "workflows.cli.app", "bench", "scale", "--json"]
    run = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    for key in ("sizes", "cost_growth", "client_rss_growth", "cost_growth_per_stage", "png"):
        assert key in result
    (row,) = result["sizes"]
    assert abs(row["voxels"] / 1e6 - 1) < 0.01
    stages = ("fragments", "graph", "agglomerate", "relabel", "evaluate", "export")
    assert set(stages) <= set(row["stages"])
    for name in stages:
        s = row["stages"][name]
        assert s["seconds"] > 0 and s["client_peak_mb"] > 0 and s["worker_peak_mb"] > 0
    assert row["stages"]["export"]["files_written"] > 0
    assert row["files_written"] >= sum(s["files_written"] for s in row["stages"].values())
    if importlib.util.find_spec("igneous") is None:  # the peer is in the bench extra, not CI's
        assert "igneous" not in row and "pip install" in result["igneous_missing"]
    else:
        assert row["igneous"]["files_written"] > 0 and row["export_vs_igneous"] > 0
    assert result["cost_growth"] == 1.0  # one size: its own ratio
    assert (tmp_path / "scale.png").stat().st_size > 0
