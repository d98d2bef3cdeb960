"""Reading ahead in the predict stage: the next block's input is read while the current block
computes; the output is the same with and without it; reads ahead are bounded, their errors name
the block, and nothing read ahead is kept after an error. The stage reports its busy fraction."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pipeline.inference.prefetch import Prefetcher
from pipeline.io.volume import open_volume
from pipeline.stages.predict import PREFETCH_GROUP, plan_predict, predict
from tests.support.predict import tiny_net, write_input


@pytest.fixture(scope="module")
def raw_url(tmp_path_factory) -> str:
    from pipeline.synthetic.volume import make_volume

    raw = make_volume((32, 48, 64), seed=5).raw
    return write_input(str(tmp_path_factory.mktemp("pf") / "in.zarr" / "raw"), raw)


def _predict(net, url, out, client, prefetch):
    return predict(
        net, url, out, client=client, progress=False, block=(16, 16, 16), patch=(16, 16, 16),
        chunks=(16, 16, 16), dtype="float32", device="cpu", prefetch=prefetch,
    )  # fmt: skip


def test_prefetch_gives_identical_output_and_reports_busy_fraction(tmp_path, client, raw_url):
    net = tiny_net(2)
    with_pf = _predict(net, raw_url, str(tmp_path / "a.zarr" / "p"), client, 1)
    without = _predict(net, raw_url, str(tmp_path / "b.zarr" / "p"), client, 0)
    a = open_volume(str(tmp_path / "a.zarr" / "p")).read()
    b = open_volume(str(tmp_path / "b.zarr" / "p")).read()
    assert np.array_equal(a, b) and a.std() > 1e-4  # equal, and not constant
    blocks = 2 * 3 * 4
    assert with_pf.blocks_run == without.blocks_run == blocks
    # every block but the first of each task was read ahead, while its predecessor computed
    groups = -(-blocks // PREFETCH_GROUP)
    assert with_pf.timing["read_ahead_hits"] == blocks - groups
    assert without.timing["read_ahead_hits"] == 0
    for report in (with_pf, without):
        t = report.timing
        assert t["devices"] == ["cpu"] and t["workers"] == 1
        assert 0 < t["busy_fraction"] <= 1 and t["model_seconds"] > 0
        assert report.as_dict()["timing"]["busy_fraction"] == report.busy_fraction


def test_plan_groups_blocks_only_when_reading_ahead(tmp_path, raw_url):
    net = tiny_net()
    opts = {"patch": (16, 16, 16), "block": (16, 16, 16), "chunks": (16, 16, 16)}
    on = plan_predict(net, raw_url, str(tmp_path / "o.zarr" / "a"), **opts)
    off = plan_predict(net, raw_url, str(tmp_path / "o.zarr" / "b"), prefetch=0, **opts)
    assert on.blocks_per_task == PREFETCH_GROUP and off.blocks_per_task == 1
    proc = on.process
    first = proc.grid.block(0)
    assert proc.next_block(first).block_id == 1
    last_of_group = proc.grid.block(PREFETCH_GROUP - 1)
    assert proc.next_block(last_of_group) is None  # the next task may run elsewhere


def test_read_ahead_overlaps_the_current_computation():
    """The read of item i+1 starts while item i is being computed: the computation waits for
    that start (it would time out if reads ran only on demand)."""
    started = {i: threading.Event() for i in range(4)}
    threads = {}

    def read(i):
        threads[i] = threading.current_thread().name
        started[i].set()
        return np.full(3, i)

    with Prefetcher(1) as pf:
        for i in range(4):
            data = pf.take(i, lambda i=i: read(i))
            if i + 1 < 4:
                pf.submit(i + 1, lambda i=i: read(i + 1))
                assert started[i + 1].wait(30), "the next read did not start during compute"
            assert data.tolist() == [i] * 3
        assert pf.hits == 3
    assert threads[0] == threading.current_thread().name
    assert all(threads[i].startswith("petaseg-prefetch") for i in (1, 2, 3))


def test_reads_ahead_are_bounded_and_cleared():
    gate = threading.Event()
    reads = []

    def read(i):
        gate.wait(30)
        reads.append(i)
        return i

    pf = Prefetcher(2)
    try:
        for i in range(5):
            pf.submit(i, lambda i=i: read(i))
            assert len(pf) <= 2
        assert len(pf) == 2
        gate.set()
        assert pf.take(4, lambda: -1) == 4  # kept: the newest two
        assert pf.take(0, lambda: -1) == -1  # dropped: read now, on the caller's thread
        pf.clear()
        assert len(pf) == 0
    finally:
        pf.close()
    assert len(reads) <= 3  # ids 0 (running when dropped), 3 and 4 at most: never all five


def test_read_ahead_errors_name_the_block_and_keep_their_type():
    def broken():
        raise OSError("chunk 0.1.2 is damaged")

    with Prefetcher(1) as pf:
        pf.submit(17, broken)
        with pytest.raises(OSError, match="damaged") as err:
            pf.take(17, lambda: None)
        assert any("block 17" in note for note in err.value.__notes__)
        assert len(pf) == 0


def test_failed_block_drops_what_was_read_ahead(tmp_path, client, raw_url, monkeypatch):
    """A block whose read fails is reported by id and stays unmarked; the task's other blocks
    still finish (retries read again), and a rerun computes only the missing block."""
    import pipeline.stages.predict as stage
    from pipeline.errors import BlockFailures

    real = stage.read_input
    calls = {"n": 0}

    def flaky(vin, engine, write):
        if write.begin == (0, 0, 16):  # block 1: every attempt fails
            calls["n"] += 1
            raise OSError(f"cannot read {write}")
        return real(vin, engine, write)

    monkeypatch.setattr(stage, "read_input", flaky)
    out = str(tmp_path / "f.zarr" / "p")
    with pytest.raises(BlockFailures) as err:
        _predict(tiny_net(2), raw_url, out, client, 1)
    assert err.value.failed == [1] and calls["n"] == 3  # read ahead once, retried twice
    monkeypatch.setattr(stage, "read_input", real)
    again = _predict(tiny_net(2), raw_url, out, client, 1)
    assert again.blocks_run == 1


def test_a_read_left_ahead_by_one_run_is_never_taken_by_another(tmp_path, raw_url):
    """Run A's task is cut after block 0 (its read of block 1 is left on the thread); run B on
    another input then computes its block 1 on the same thread from its own input."""
    from pipeline.inference.prefetch import thread_prefetcher

    net, opts = tiny_net(2), {"patch": (16, 16, 16), "block": (16, 16, 16), "chunks": (16, 16, 16)}
    raw = open_volume(raw_url).read()
    other = write_input(str(tmp_path / "inv.zarr" / "raw"), 255 - raw)
    a = plan_predict(net, raw_url, str(tmp_path / "a.zarr" / "p"), dtype="float32", **opts)
    b = plan_predict(net, other, str(tmp_path / "b.zarr" / "p"), dtype="float32", **opts)
    ref = plan_predict(
        net, other, str(tmp_path / "r.zarr" / "p"), dtype="float32", prefetch=0, **opts
    )
    a.process(a.grid().block(0))
    assert len(thread_prefetcher(1)) == 1  # A's block 1, read ahead
    block = b.grid().block(1)
    b.process(block)
    ref.process(ref.grid().block(1))
    got = open_volume(str(tmp_path / "b.zarr" / "p")).read(block.write_roi)
    want = open_volume(str(tmp_path / "r.zarr" / "p")).read(block.write_roi)
    assert np.array_equal(got, want)
    thread_prefetcher(1).clear()
