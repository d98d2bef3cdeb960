"""Resume and worker loss for the predict stage: what the runner promises holds for inference."""

from __future__ import annotations

import os

import numpy as np
import pytest

from pipeline.errors import BlockFailures
from pipeline.io.volume import open_volume
from pipeline.runner.blockwise import Block, run_blockwise
from pipeline.stages.predict import plan_predict, predict_array
from tests.support.predict import tiny_net, write_input

PATCH = (16, 16, 16)
BLOCK = (16, 32, 32)  # 2 x 1 x 2 = 4 blocks on a 32 x 32 x 64 volume


class KillWorkerOnce:
    """The first time ``victim`` runs, its worker process dies mid-block (os._exit)."""

    def __init__(self, inner, flag: str, victim: int):
        self.inner, self.flag, self.victim = inner, flag, victim

    def __call__(self, block: Block) -> None:
        if block.block_id == self.victim and not os.path.exists(self.flag):
            with open(self.flag, "w") as f:
                f.write(str(os.getpid()))
            os._exit(1)
        self.inner(block)


class FailBlock:
    def __init__(self, inner, bad: int):
        self.inner, self.bad = inner, bad

    def __call__(self, block: Block) -> None:
        if block.block_id == self.bad:
            raise RuntimeError(f"synthetic failure in block {block.block_id}")
        self.inner(block)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    raw = np.random.default_rng(7).integers(0, 255, (32, 32, 64), dtype=np.uint8)
    url = write_input(str(tmp / "in.zarr" / "raw"), raw)
    net = tiny_net(3)
    ref = predict_array(net, raw, patch=PATCH, overlap=0.5, device="cpu")[0]
    return tmp, url, net, ref


def _plan(net, url, out):
    return plan_predict(
        net, url, out, patch=PATCH, block=BLOCK, chunks=(16, 16, 16), dtype="float32",
        device="cpu",
    )  # fmt: skip


def test_worker_killed_mid_run_gives_identical_output_and_rerun_does_nothing(setup):
    from distributed import Client, LocalCluster

    tmp, url, net, ref = setup
    out = str(tmp / "out.zarr" / "killed")
    flag = str(tmp / "killed.flag")
    task = _plan(net, url, out)
    inner = task.process
    task.process = KillWorkerOnce(inner, flag, victim=2)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as lc,
        Client(lc) as c,
    ):
        report = run_blockwise(task, c, progress=False)
        assert os.path.exists(flag), "the victim block never ran"
        assert int(open(flag).read()) != os.getpid()  # a worker process died, not this one
        assert report.blocks_run == 4 and not report.failed
        np.testing.assert_allclose(open_volume(out).read(), ref, atol=1e-5, rtol=0)
        task.process = inner
        again = run_blockwise(task, c, progress=False)
    assert (again.blocks_run, again.blocks_skipped) == (0, 4)


def test_failed_block_is_not_marked_and_a_rerun_computes_only_it(setup, client):
    tmp, url, net, ref = setup
    out = str(tmp / "out.zarr" / "failed")
    task = _plan(net, url, out)
    inner = task.process
    task.process = FailBlock(inner, bad=1)
    task.max_retries = 0
    with pytest.raises(BlockFailures, match="block"):
        run_blockwise(task, client, progress=False)
    task.process = inner
    report = run_blockwise(task, client, progress=False)
    assert (report.blocks_run, report.blocks_skipped) == (1, 3)
    np.testing.assert_allclose(open_volume(out).read(), ref, atol=1e-5, rtol=0)
    # planning again with the same parameters finds the markers: nothing to do
    again = run_blockwise(_plan(net, url, out), client, progress=False)
    assert again.blocks_run == 0
    # a changed parameter (overlap) recomputes everything
    changed = plan_predict(
        net, url, out, patch=PATCH, block=BLOCK, chunks=(16, 16, 16), dtype="float32",
        overlap=0.25, device="cpu",
    )  # fmt: skip
    assert run_blockwise(changed, client, progress=False).blocks_run == 4
