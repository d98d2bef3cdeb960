"""Scheduling cost: 100,000 no-op blocks on 2 workers, petaseg vs daisy vs a bare client.map,
all in one run; and the client's peak RSS for 10^4 vs 10^6 blocks (petabyte-sized virtual ROI).

Each contender gets its own 2-worker cluster; cluster start-up is excluded for the Dask-based
ones (daisy starts its worker processes inside run_blockwise, so its figure includes that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

BLOCKS = 100_000
WORKERS = 2


def noop_block(block) -> None:
    return None


def noop(x):
    return None


def _grid_for(n_blocks: int):
    """A ROI of exactly ``n_blocks`` blocks of 1000^3 voxels at 4x4x40 nm (10^6 blocks = 1 PB)."""
    from pipeline.geometry import Roi

    for z in range(int(round(n_blocks ** (1 / 3))) + 1, 0, -1):
        if n_blocks % z == 0:
            rest = n_blocks // z
            for y in range(int(rest**0.5) + 1, 0, -1):
                if rest % y == 0:
                    shape_blocks = (z, y, rest // y)
                    break
            break
    vs = (40, 4, 4)
    block = tuple(1000 * v for v in vs)
    return Roi((0, 0, 0), tuple(b * n for b, n in zip(block, shape_blocks, strict=True))), block, vs


def run_petaseg(n_blocks: int, client) -> float:
    from pipeline.runner.blockwise import BlockTask, run_blockwise

    roi, block, vs = _grid_for(n_blocks)
    with tempfile.TemporaryDirectory() as tmp:
        task = BlockTask("noop", roi, block, noop_block, done_url=f"{tmp}/virtual", voxel_size=vs)
        t0 = time.perf_counter()
        report = run_blockwise(task, client=client, progress=False)
        secs = time.perf_counter() - t0
    assert report.blocks_run == n_blocks, report
    return secs


def run_daisy(n_blocks: int) -> float:
    import daisy

    roi, block, _ = _grid_for(n_blocks)
    import daisy.logging

    with tempfile.TemporaryDirectory() as tmp:
        daisy.set_tracking_basedir(tmp)
        daisy.logging.set_log_basedir(None)
        task = daisy.Task(
            "noop",
            total_roi=daisy.Roi(roi.begin, roi.shape),
            read_roi=daisy.Roi((0, 0, 0), block),
            write_roi=daisy.Roi((0, 0, 0), block),
            process_function=noop_block,
            num_workers=WORKERS,
        )
        t0 = time.perf_counter()
        ok = daisy.run_blockwise([task], progress=False, summary=False)
        secs = time.perf_counter() - t0
    assert ok
    return secs


def run_dask_map(n_blocks: int, client) -> float:
    from distributed import wait

    t0 = time.perf_counter()
    futures = client.map(noop, range(n_blocks), pure=False)
    wait(futures)
    secs = time.perf_counter() - t0
    del futures
    return secs


def _cluster():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return Client(cluster)


def rss_run(n_blocks: int) -> float:
    """Peak RSS (MB) of the client process (with its in-process scheduler) while it runs
    ``n_blocks`` no-op blocks, sampled every 5 ms. ``ru_maxrss`` is not used: it also catches
    the transient spike of starting worker processes, which has nothing to do with the volume."""
    import threading

    import psutil

    client = _cluster()
    me = psutil.Process()
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], me.memory_info().rss)
            time.sleep(0.005)

    try:
        run_petaseg(1000, client)  # warm up imports and connections before measuring
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        run_petaseg(n_blocks, client)
        stop.set()
        sampler.join()
    finally:
        client.close()
        client.cluster.close()
    return peak[0] / 2**20


def _rss_in_subprocess(n_blocks: int) -> float:
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_scheduler", "--rss", str(n_blocks)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    return float(out.stdout.strip().splitlines()[-1])


def main(json_out: bool = False) -> dict:
    client = _cluster()
    try:
        petaseg_s = run_petaseg(BLOCKS, client)
        dask_map_s = run_dask_map(BLOCKS, client)
    finally:
        client.close()
        client.cluster.close()
    daisy_s = run_daisy(BLOCKS)
    rss_1e4 = _rss_in_subprocess(10_000)
    rss_1e6 = _rss_in_subprocess(1_000_000)
    return {
        "blocks": BLOCKS,
        "workers": WORKERS,
        "petaseg_s": round(petaseg_s, 3),
        "daisy_s": round(daisy_s, 3),
        "dask_map_s": round(dask_map_s, 3),
        "ratio_vs_daisy": round(petaseg_s / daisy_s, 4),
        "ratio_vs_dask_map": round(petaseg_s / dask_map_s, 4),
        "rss_1e4_mb": round(rss_1e4, 1),
        "rss_1e6_mb": round(rss_1e6, 1),
        "rss_ratio": round(rss_1e6 / rss_1e4, 4),
        "machine": f"{os.cpu_count()} cores",
    }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--rss":
        print(rss_run(int(sys.argv[2])))
    else:
        print(json.dumps(main(True)))
