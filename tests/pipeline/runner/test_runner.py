import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import BlockFailures, ClusterError, InputError
from pipeline.io.volume import open_volume
from pipeline.runner import blockwise
from pipeline.runner.blockwise import BlockTask, run_blockwise
from pipeline.runner.done import DoneMarkers
from tests.conftest import REPO
from tests.support.runner_stages import WritePattern, make_output, make_task, pattern


def _executions(log_dir: Path) -> list[int]:
    return sorted(int(p.name.split("-")[0]) for p in log_dir.iterdir())


def test_second_run_processes_zero_blocks_and_changed_params_recompute(tmp_path, client):
    url = str(tmp_path / "o.zarr" / "p")
    make_output(url)
    logs = tmp_path / "logs"
    logs.mkdir()
    first = run_blockwise(make_task(url, WritePattern(url, str(logs))), client, progress=False)
    assert (first.blocks_total, first.blocks_run) == (64, 64)
    np.testing.assert_array_equal(open_volume(url).read(), pattern(open_volume(url).roi))
    second = run_blockwise(make_task(url, WritePattern(url, str(logs))), client, progress=False)
    assert (second.blocks_run, second.blocks_skipped) == (0, 64)
    assert len(_executions(logs)) == 64
    third = run_blockwise(
        make_task(url, WritePattern(url, str(logs)), params={"v": 2}), client, progress=False
    )
    assert third.blocks_run == 64
    # markers live beside the container, not inside the Zarr hierarchy
    assert Path(first.markers).is_relative_to(tmp_path / "o.zarr.done")


def test_auto_batching_runs_every_block_once(tmp_path, client):
    url = str(tmp_path / "o.zarr" / "p")
    make_output(url, shape=(64, 64, 64))  # 512 blocks
    logs = tmp_path / "logs"
    logs.mkdir()
    report = run_blockwise(
        make_task(url, WritePattern(url, str(logs)), blocks_per_task=None), client, progress=False
    )
    assert report.blocks_run == 512
    assert _executions(logs) == list(range(512))


def test_killed_client_resumes_only_remaining_blocks(tmp_path, client):
    url = str(tmp_path / "k.zarr" / "p")
    logs = tmp_path / "logs"
    logs.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.runner_stages", url, str(logs), "0.15"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while len(list(logs.iterdir())) < 20 and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the client finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    task = make_task(url, WritePattern(url, str(logs)))
    markers = DoneMarkers(url, "pattern", _payload(task), 1)
    done_before = sum(int(markers.done_in_group(g, 1)[0]) for g in range(64))
    assert 0 < done_before < 64
    before = len(list(logs.iterdir()))
    report = run_blockwise(task, client, progress=False)
    assert report.blocks_run == 64 - done_before
    assert len(list(logs.iterdir())) - before == 64 - done_before
    # byte for byte equal to an uninterrupted run
    ref = str(tmp_path / "ref.zarr" / "p")
    make_output(ref)
    run_blockwise(make_task(ref, WritePattern(ref)), client, progress=False)
    np.testing.assert_array_equal(open_volume(url).read(), open_volume(ref).read())


def _payload(task: BlockTask) -> dict:
    return {
        "params": task.params,
        "total_roi": [list(task.total_roi.begin), list(task.total_roi.shape)],
        "block_shape": list(task.block_shape),
        "context": list(task.context),
        "edge": task.edge,
    }


def test_worker_process_killed_mid_run(tmp_path):
    from distributed import Client, LocalCluster

    url = str(tmp_path / "w.zarr" / "p")
    make_output(url)
    logs = tmp_path / "logs"
    logs.mkdir()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as lc,
        Client(lc) as c,
    ):
        killed = []

        def killer():
            while len(list(logs.iterdir())) < 10:
                time.sleep(0.02)
            victim = sorted(c.scheduler_info()["workers"])[0]
            killed.append(victim)
            try:
                c.run(os._exit, 1, workers=[victim])
            except Exception:  # noqa: BLE001 - the worker dies before it can answer
                pass

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        report = run_blockwise(
            make_task(url, WritePattern(url, str(logs), delay=0.05)), c, progress=False
        )
        t.join(timeout=5)
        assert killed and killed[0] not in c.scheduler_info()["workers"]  # it died mid-run
    assert report.blocks_run + report.blocks_skipped == 64
    np.testing.assert_array_equal(open_volume(url).read(), pattern(open_volume(url).roi))


def test_failing_block_is_retried_reported_and_not_marked(tmp_path, client):
    url = str(tmp_path / "f.zarr" / "p")
    make_output(url)
    logs = tmp_path / "logs"
    logs.mkdir()
    with pytest.raises(BlockFailures) as e:
        run_blockwise(
            make_task(url, WritePattern(url, str(logs), fail_block=5), max_retries=2),
            client,
            progress=False,
        )
    assert len(list(logs.glob("failed-*"))) == 3  # the first try and two retries
    assert (
        e.value.failed == [5] and "block 5" in str(e.value) and "synthetic failure" in str(e.value)
    )
    task = make_task(url, WritePattern(url))
    markers = DoneMarkers(url, "pattern", _payload(task), 1)
    assert not markers.done_in_group(5, 1)[0] and markers.done_in_group(4, 1)[0]
    assert not markers.is_complete()
    rerun = run_blockwise(task, client, progress=False)  # the fix: only block 5 runs
    assert rerun.blocks_run == 1


def test_failure_exits_non_zero_from_a_script(tmp_path):
    url = str(tmp_path / "s.zarr" / "p")
    code = (
        "from tests.support.runner_stages import *\n"
        "from workflows.cli.exits import exit_on_failure\n"
        "from distributed import Client, LocalCluster\n"
        "if __name__ == '__main__':\n"
        "    c = Client(LocalCluster(n_workers=1, processes=False, dashboard_address=None))\n"
        f"    make_output({url!r})\n"
        f"    with exit_on_failure():\n"
        f"        run_blockwise(make_task({url!r}, WritePattern({url!r}, fail_block=7)), c, progress=False)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 3, proc.stderr
    assert "1 block(s) failed" in proc.stderr and ": 7" in proc.stderr


def test_block_timeout(tmp_path, client):
    url = str(tmp_path / "t.zarr" / "p")
    make_output(url, shape=(8, 8, 16))
    with pytest.raises(BlockFailures, match="timed out") as e:
        run_blockwise(
            make_task(url, WritePattern(url, hang_block=1), timeout_s=0.5, max_retries=0),
            client,
            progress=False,
        )
    assert e.value.failed == [1]


def test_misaligned_block_shape_is_refused(tmp_path, client):
    url = str(tmp_path / "m.zarr" / "p")
    make_output(url)
    task = make_task(url, WritePattern(url))
    task.block_shape = (12, 8, 8)
    with pytest.raises(InputError, match="not a multiple of the output's chunk"):
        run_blockwise(task, client, progress=False)


def test_missing_gpu_resource_is_a_clear_error(tmp_path, client, monkeypatch):
    monkeypatch.setattr(blockwise, "RESOURCE_WAIT_S", 0.2)
    url = str(tmp_path / "g.zarr" / "p")
    make_output(url)
    with pytest.raises(ClusterError, match="--resources GPU=1"):
        run_blockwise(
            make_task(url, WritePattern(url), resources={"GPU": 1}), client, progress=False
        )
