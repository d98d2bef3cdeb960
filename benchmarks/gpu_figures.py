"""Figures both GPU benchmark sections share: the GPU's measured bf16 matmul rate (the peak that
``gpu_peak_fraction`` divides by), network FLOPs per voxel (counted by torch's FlopCounterMode,
2 per multiply-add), and the patches a blockwise predict run computes.

``PETASEG_BENCH_GPU_ONLY=1`` makes ``bench inference`` and ``bench model`` run only their GPU
sections (``benchmarks/gpu_check.sh`` sets it to stay within its time); ``PETASEG_BENCH_GPU=0``
leaves the GPU sections out. Without CUDA they report ``"gpu": null`` and the reason.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence

import torch

MATMUL_N = 8192


def gpu_only() -> bool:
    return os.environ.get("PETASEG_BENCH_GPU_ONLY", "") == "1"


def gpu_wanted() -> tuple[bool, str]:
    """Whether to run the GPU section, and why not."""
    if os.environ.get("PETASEG_BENCH_GPU", "") == "0":
        return False, "PETASEG_BENCH_GPU=0: GPU section not run"
    if not torch.cuda.is_available():
        return False, "no CUDA device on this machine (torch.cuda.is_available() is False)"
    return True, ""


def bf16_matmul_flops(device: torch.device | str = "cuda", n: int = MATMUL_N) -> float:
    """The best of 5 timings of 10 bf16 (n x n) @ (n x n) products: FLOP/s."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(10):
            a @ b
        torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 * 10 / best


def flops_per_voxel(net: torch.nn.Module, patch: Sequence[int], channels: int = 1) -> float:
    """Network FLOPs per input voxel of one patch (counted, not estimated)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, channels, *patch, device=next(net.parameters()).device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(x)
    return counter.get_total_flops() / x.numel()


def patches_computed(shape: Sequence[int], patch: Sequence[int], overlap: float, block) -> int:
    """Patches a blockwise run computes over a volume of ``shape`` voxels in blocks of
    ``block`` (patches that straddle block faces count once per block): per axis, the sum over
    the blocks along it of the patches overlapping each, multiplied over the axes."""
    from pipeline.inference.patch_grid import PatchGrid

    grid = PatchGrid.build(shape, patch, overlap)
    total = 1
    for axis, size, b in zip(grid.axes, shape, block, strict=True):
        total *= sum(len(axis.overlapping(lo, min(lo + b, size))) for lo in range(0, size, b))
    return total


def peak_mb() -> float:
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)
