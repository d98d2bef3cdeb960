"""Devices to run a check on: always the CPU, and CUDA as a ``gpu``-marked case that is skipped
with its reason where torch sees no GPU (``pytest -m gpu`` runs only the GPU cases)."""

from __future__ import annotations

import pytest
import torch

NO_CUDA = "no CUDA GPU: torch.cuda.is_available() is False (benchmarks/gpu_check.sh runs these)"

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=[pytest.mark.gpu, requires_cuda]),
]
