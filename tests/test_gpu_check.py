"""benchmarks/gpu_check.sh: without CUDA (or with --dry-run) it says what it would run and measure
and exits 0 without running anything; its results file and the FLOP count it relies on."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
FIGURES = ("gpu_vps", "gpu_busy_fraction", "gpu_peak_mb", "gpu_peak_fraction")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )


def _says_what_it_would_do(out: str) -> None:
    assert "DRY RUN" in out and "nothing below is run or measured" in out
    for step in range(1, 6):
        assert f"step {step}" in out
    assert "python -m pytest -q -m gpu" in out
    assert "petaseg bench inference --json" in out and "petaseg bench model --json" in out
    for figure in FIGURES:
        assert out.count(figure) >= 2, figure  # named for both benchmarks
    assert "target >= 0.25" in out and "within 1e-5" in out


def test_dry_run_says_what_it_would_measure_and_runs_nothing(tmp_path):
    assert SCRIPT.read_text().splitlines()[1:30].count("set -euo pipefail") == 1
    out_file = tmp_path / "gpu.json"
    done = _run("--dry-run", "--out", str(out_file))
    assert done.returncode == 0, done.stderr
    _says_what_it_would_do(done.stdout)
    assert str(out_file) in done.stdout and not out_file.exists()
    assert "== step" not in done.stdout  # no step ran


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present: the script would run for real")
def test_without_cuda_it_is_a_dry_run():
    done = _run()
    assert done.returncode == 0, done.stderr
    assert "no CUDA device" in done.stdout
    _says_what_it_would_do(done.stdout)


def test_usage_errors_exit_2_with_the_fix():
    done = _run("--bogus")
    assert done.returncode == 2 and "unknown option '--bogus'" in done.stderr
    assert "--dry-run" in done.stderr and "Traceback" not in done.stderr
    done = _run("--out")
    assert done.returncode == 2 and "--out needs a file name" in done.stderr


def test_results_file_collects_the_device_tests_and_benchmark_lines(tmp_path):
    from benchmarks.gpu_results import collect, headline

    (tmp_path / "torch.txt").write_text("torch 2.14.1, CUDA 13.0, NVIDIA H200\n")
    (tmp_path / "tests.txt").write_text("....\n6 passed in 40.1s\n")
    inference = {"gpu_vps": 5.0e7, "gpu_busy_fraction": 0.93, "gpu_peak_mb": 900.0,
                 "gpu_peak_fraction": 0.12}  # fmt: skip
    (tmp_path / "inference.json").write_text(json.dumps(inference) + "\n")
    (tmp_path / "model.json").write_text("Traceback (most recent call last):\n")
    results = collect(tmp_path, 0)
    assert results["tests"] == {"exit_code": 0, "summary": "6 passed in 40.1s"}
    assert results["inference"] == inference and results["model"] is None
    lines = "\n".join(headline(results))
    assert "NVIDIA H200" in lines and "gpu_busy_fraction=0.93" in lines
    assert "0.120 is below the target 0.25" in lines and "bench model: no result" in lines


def test_patches_computed_counts_every_block_s_patches():
    from benchmarks.gpu_figures import patches_computed
    from pipeline.geometry import Roi
    from pipeline.inference.patch_grid import PatchGrid

    shape, patch, block = (40, 50, 70), (16, 16, 16), (16, 32, 32)
    grid = PatchGrid.build(shape, patch, 0.5)
    brute = 0
    for z in range(0, shape[0], block[0]):
        for y in range(0, shape[1], block[1]):
            for x in range(0, shape[2], block[2]):
                end = [min(b + s, n) for b, s, n in zip((z, y, x), block, shape, strict=True)]
                roi = Roi((z, y, x), tuple(e - b for e, b in zip(end, (z, y, x), strict=True)))
                brute += sum(1 for _ in grid.overlapping(roi))
    assert patches_computed(shape, patch, 0.5, block) == brute > grid.num_patches
