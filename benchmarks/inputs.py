"""What the segmentation and correction benchmarks share: the FIB boundary map (the shipped
model's prediction, or a stand-in computed from the raw data), nearest-neighbour affinities for
waterz, and silencing waterz's progress output."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchmarks.correct_experiment import boundary_from_raw

MODEL = Path(__file__).resolve().parents[1] / "models" / "zoo" / "fib-boundary-v1.pt"
STANDIN = "stand-in: clip((p99 - gauss(raw, 1)) / (p99 - p1), 0, 1)"


@contextlib.contextmanager
def quiet_fd() -> Iterator[None]:
    """Silence C++ std::cout (waterz prints its progress) at the file-descriptor level."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def affinities(b: np.ndarray) -> np.ndarray:
    """aff_d(x) = 1 - max(b(x), b(x - e_d)); 0 on the lower face of each axis."""
    a = np.zeros((3, *b.shape), np.float32)
    for d in range(3):
        hi = [slice(None)] * 3
        lo = [slice(None)] * 3
        hi[d], lo[d] = slice(1, None), slice(None, -1)
        a[d][tuple(hi)] = 1.0 - np.maximum(b[tuple(hi)], b[tuple(lo)])
    return a


def fib_boundary(raw: np.ndarray) -> tuple[np.ndarray, str]:
    """The boundary map of FIB raw data and where it came from: the shipped model's prediction
    when ``models/zoo/fib-boundary-v1.pt`` exists, else the stand-in ``boundary_from_raw``."""
    if MODEL.exists():
        from pipeline.stages.predict import predict_array  # torch: only when the model is there

        pred = predict_array(str(MODEL), raw, device="auto")
        return np.clip(pred[0], 0, 1).astype(np.float32), f"model {MODEL.name}"
    return boundary_from_raw(raw), STANDIN
