"""Where a predict run's time goes on each worker: in the network, reading input, waiting for it.

Each worker process keeps one small ``WorkerTimes`` per (run, worker) — a few numbers, never
anything per block — and the client collects them after the run (``client.run``). The **busy
fraction** is the time in the network over the time a worker spent on the run's blocks (from its
first block's start to its last block's end): near 1 when the GPU (or the CPU cores) never waits
for storage, lower when it does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

__all__ = ["WorkerTimes", "busy_summary", "collect_times", "record_block"]

_times: dict[tuple[str, str], WorkerTimes] = {}
_lock = threading.Lock()


@dataclass
class WorkerTimes:
    device: str
    blocks: int = 0
    model_s: float = 0.0  # in the network's forward passes
    wait_s: float = 0.0  # waiting for input (a read ahead still running, or a synchronous read)
    read_ahead_hits: int = 0  # blocks whose input was already being read ahead
    first_start: float = 0.0
    last_end: float = 0.0
    gpu_peak_mb: float | None = None

    @property
    def span_s(self) -> float:
        return max(0.0, self.last_end - self.first_start)


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ValueError, ImportError):
        return "local"


def record_block(
    run: str, device: torch.device, start: float, model_s: float, wait_s: float, hit: bool
) -> None:
    """Add one block (started at ``start``, ending now) to this worker's times for ``run``."""
    end = time.perf_counter()
    key = (run, _worker_name())
    with _lock:
        t = _times.get(key)
        if t is None:
            t = _times[key] = WorkerTimes(str(device), first_start=start)
        t.blocks += 1
        t.model_s += model_s
        t.wait_s += wait_s
        t.read_ahead_hits += int(hit)
        t.first_start = min(t.first_start, start)
        t.last_end = max(t.last_end, end)
        if device.type == "cuda":
            t.gpu_peak_mb = torch.cuda.max_memory_allocated(device) / 2**20


def collect_times(run: str, dask_worker: Any = None) -> dict[str, Any] | None:
    """This worker's times for ``run`` (removed from the process), as a dict; None if it ran
    no block of it. Called on each worker through ``client.run``."""
    name = str(dask_worker.address) if dask_worker is not None else _worker_name()
    with _lock:
        t = _times.pop((run, name), None)
    return None if t is None else {**asdict(t), "span_s": t.span_s}


def busy_summary(per_worker: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """The run's figures over the workers that ran blocks: busy fraction (network time over the
    workers' time on the run), seconds in the network and waiting for input, devices used."""
    ran = [t for t in per_worker.values() if t]
    if not ran:
        return {"busy_fraction": None, "devices": []}
    span = sum(t["span_s"] for t in ran)
    model = sum(t["model_s"] for t in ran)
    peaks = [t["gpu_peak_mb"] for t in ran if t["gpu_peak_mb"] is not None]
    return {
        "busy_fraction": round(model / span, 4) if span > 0 else None,
        "model_seconds": round(model, 3),
        "input_wait_seconds": round(sum(t["wait_s"] for t in ran), 3),
        "read_ahead_hits": sum(t["read_ahead_hits"] for t in ran),
        "workers": len(ran),
        "devices": sorted({t["device"] for t in ran}),
        "gpu_peak_mb": round(max(peaks), 1) if peaks else None,
    }
