"""Prediction on a device: float32 on a GPU equals the CPU within 1e-5, bf16 autocast stays within
the documented tolerance, and the predict stage on a worker that offers ``GPU=1`` runs there
(the device and its peak memory are in the stage's timing). CPU cases run in every suite; the
CUDA cases are marked ``gpu``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.inference.engine import BF16_MAX_ABS_DIFF, BF16_MEAN_ABS_DIFF
from pipeline.stages.predict import predict, predict_array
from tests.support.devices import DEVICES
from tests.support.predict import write_input

PATCH = (32, 32, 32)


@pytest.fixture(scope="module")
def raw() -> np.ndarray:
    from pipeline.synthetic.volume import make_volume

    return make_volume((32, 64, 64), seed=7).raw


@pytest.fixture(scope="module")
def cpu_float32(raw) -> np.ndarray:
    """The shipped boundary model in float32 on the CPU: the reference."""
    return predict_array("fib-boundary-v1", raw, patch=PATCH, device="cpu", amp=None)


@pytest.mark.parametrize("device", DEVICES)
def test_float32_prediction_equals_the_cpu(device, raw, cpu_float32):
    got = predict_array("fib-boundary-v1", raw, patch=PATCH, device=device, amp=None)
    assert got.shape == cpu_float32.shape == (1, *raw.shape)
    assert cpu_float32.std() > 0.05  # a real boundary map, not a constant
    assert np.abs(got - cpu_float32).max() <= 1e-5


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_prediction_is_within_the_documented_tolerance(device, raw, cpu_float32):
    got = predict_array("fib-boundary-v1", raw, patch=PATCH, device=device, amp="bf16")
    diff = np.abs(got - cpu_float32)
    if device == "cpu":  # CPUs always compute in float32: the option changes nothing there
        assert diff.max() <= 1e-5
        return
    assert 0 < diff.max() <= BF16_MAX_ABS_DIFF  # > 0: autocast really ran in bf16
    assert diff.mean() <= BF16_MEAN_ABS_DIFF
    assert ((got > 0.5) == (cpu_float32 > 0.5)).mean() >= 0.995


def _peak_allocated_mb() -> float:
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0


@pytest.mark.parametrize("device", DEVICES)
def test_predict_stage_on_a_gpu_worker_runs_on_its_device(device, raw, tmp_path):
    """A worker process that offers ``GPU=1``: the stage asks for it, and with ``device="auto"``
    the blocks run on CUDA where the worker sees a GPU (CPU case: device="cpu")."""
    from distributed import Client, LocalCluster

    url = write_input(str(tmp_path / "in.zarr" / "raw"), raw[:, :32, :64])
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
            host="127.0.0.1", resources={"GPU": 1},
        ) as lc,
        Client(lc) as client,
    ):  # fmt: skip
        report = predict(
            "fib-boundary-v1", url, str(tmp_path / "out.zarr" / "p"), client=client,
            progress=False, block=(32, 32, 32), patch=PATCH, chunks=(32, 32, 32),
            device="auto" if device == "cuda" else "cpu",
        )  # fmt: skip
        peaks = client.run(_peak_allocated_mb)
    assert report.blocks_run == 2
    timing = report.timing
    assert timing["devices"] == [device] and 0 < timing["busy_fraction"] <= 1
    if device == "cuda":
        assert timing["gpu_peak_mb"] > 0 and max(peaks.values()) > 0
    else:
        assert timing["gpu_peak_mb"] is None
