"""Sharded Zarr outputs at scale: above ``SHARD_ABOVE`` voxels the fragments and the segmentation
are written one shard per block (the thresholds and shard sides are lowered here so a small
volume counts as large); the result equals the unsharded one, holds far fewer files, reads the
same through TensorStore's ``zarr3`` driver, and survives a worker killed half-way through a
shard."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorstore as ts

from pipeline.errors import BlockFailures, InputError
from pipeline.io.volume import create_volume, open_volume, output_shards, shard_chunks
from pipeline.runner.blockwise import BlockTask, run_blockwise
from pipeline.seg.watershed import FragmentParams
from pipeline.stages.fragments import run_fragments
from tests.support.labels import voronoi
from tests.support.segmenting import segment
from tests.support.sharding import kill_flag

SHAPE = (32, 64, 64)
BLOCK = (32, 32, 32)
CONTEXT = (8, 8, 8)
PARAMS = FragmentParams(sigma_seeds=0.0, min_size=10)


def at_scale(mp: pytest.MonkeyPatch) -> None:
    """Make a 131,072-voxel volume count as large, with 16^3 chunks inside the shards."""
    mp.setattr("pipeline.io.volume.SHARD_ABOVE", 1)
    mp.setattr("pipeline.io.volume.SHARD_SIDE", 16)
    mp.setattr("pipeline.stages.fragments.MAX_CHUNK", 16)
    mp.setattr("pipeline.stages.relabel.SHARD_BLOCK", 64)


def stored_files(array_dir: Path) -> int:
    return sum(1 for p in (array_dir / "c").rglob("*") if p.is_file())


def tensorstore_read(url: str) -> np.ndarray:
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{url}/s0"}}
    return ts.open(spec, read=True).result().read().result()


@pytest.fixture(scope="module")
def boundary(tmp_path_factory):
    d = tmp_path_factory.mktemp("shard")
    _, bnd = voronoi(SHAPE, 16, seed=3)
    vol = create_volume(str(d / "in.zarr/boundary"), SHAPE, "float32", (4, 4, 4), chunks=(16,) * 3)
    vol.write(vol.roi, bnd)
    return d, vol.url


@pytest.fixture(scope="module")
def runs(boundary, client):
    d, url = boundary
    with pytest.MonkeyPatch.context() as mp:  # the same chunks, unsharded
        mp.setattr("pipeline.stages.fragments.MAX_CHUNK", 16)
        plain = segment(
            url, str(d / "plain.zarr/seg"), [0.7], PARAMS, BLOCK, CONTEXT, client=client
        )
    with pytest.MonkeyPatch.context() as mp:
        at_scale(mp)
        sharded = segment(
            url, str(d / "sharded.zarr/seg"), [0.7], PARAMS, BLOCK, CONTEXT, client=client
        )
    return plain, sharded


def test_shard_rule_follows_the_size_threshold():
    assert output_shards((64, 64, 64), (128, 128, 128), (64, 64, 64)) is None  # small: as before
    big = (512, 1024, 1024)
    assert output_shards(big, (128, 128, 128), (64, 64, 64)) == (128, 128, 128)
    assert output_shards(big, (128, 128, 128), (128, 128, 128)) is None  # one chunk a block
    assert shard_chunks((256, 256, 96)) == (64, 64, 48)


def test_sharded_outputs_equal_unsharded_with_fewer_files(runs):
    plain, sharded = runs
    for key, shards, chunks in (
        ("fragments_url", BLOCK, (16, 16, 16)),
        (None, (32, 64, 64), (16, 16, 16)),
    ):
        a = plain[key] if key else plain["segmentations"][0]["segmentation"]
        b = sharded[key] if key else sharded["segmentations"][0]["segmentation"]
        va, vb = open_volume(a), open_volume(b)
        assert va.shards is None and vb.shards == shards and vb.chunks == chunks
        np.testing.assert_array_equal(va.read(), vb.read())
        # one file per shard instead of one per chunk (fragments) or per block (segmentation)
        n_shards = np.prod([-(-s // g) for s, g in zip(SHAPE, shards, strict=True)])
        assert stored_files(Path(b) / "s0") == n_shards
        assert stored_files(Path(a) / "s0") >= 4 * n_shards


def test_final_segmentation_has_a_pyramid_by_default(runs):
    for result in runs:
        seg = result["segmentations"][0]["segmentation"]
        ome = json.loads((Path(seg) / "zarr.json").read_text())["attributes"]["ome"]
        paths = [d["path"] for d in ome["multiscales"][0]["datasets"]]
        assert paths[:2] == ["s0", "s1"] and "image-label" in ome
        assert all((Path(seg) / p / "zarr.json").exists() for p in paths)


def test_no_pyramid_when_turned_off(boundary, client, tmp_path):
    from workflows.run import segment_boundaries
    from workflows.schema import FragmentsStage, SegmentStage, Stages

    _, url = boundary
    stages = Stages(
        fragments=FragmentsStage(block=BLOCK, context=CONTEXT),
        segment=SegmentStage(thresholds=[0.7], pyramid=False),
    )
    result = segment_boundaries(url, str(tmp_path / "o.zarr/seg"), stages, client, False)
    seg = Path(result["segmentations"][0]["segmentation"])
    assert (seg / "s0").is_dir() and not (seg / "s1").exists()


def test_tensorstore_reads_sharded_outputs_as_zarr_does(runs):
    _, sharded = runs
    for url in (sharded["fragments_url"], sharded["segmentations"][0]["segmentation"]):
        np.testing.assert_array_equal(tensorstore_read(url), open_volume(url).read())


def test_blocks_that_would_share_a_shard_are_refused(tmp_path, client):
    vol = create_volume(
        str(tmp_path / "o.zarr/v"),
        (32, 32, 32),
        "uint8",
        (1, 1, 1),
        chunks=(8,) * 3,
        shards=(16,) * 3,
    )
    task = BlockTask("t", vol.roi, (8, 8, 8), print, vol.url, write_grid=vol.chunk_roi_shape)
    with pytest.raises(InputError, match="two blocks would write one chunk"):
        run_blockwise(task, client, progress=False)


def test_worker_killed_half_way_through_a_shard_then_resumed(boundary, runs, tmp_path, monkeypatch):
    """Two worker processes write the sharded fragments concurrently; one dies after writing
    garbage into half of a shard. The stage finishes (the block reruns whole on a live worker)
    and equals the clean run: no shard lost, none half-written."""
    from distributed import Client, LocalCluster

    _, url = boundary
    at_scale(monkeypatch)
    monkeypatch.setattr("pipeline.stages.fragments.FragmentsBlock", _killing_block())
    out = str(tmp_path / "killed.zarr/fragments")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as lc,
        Client(lc) as c,
    ):
        try:
            report = run_fragments(url, out, PARAMS, BLOCK, CONTEXT, client=c, progress=False)
        except BlockFailures:  # the block was given up on: resume the stage
            report = run_fragments(url, out, PARAMS, BLOCK, CONTEXT, client=c, progress=False)
    assert os.path.exists(kill_flag(out)), "the worker was not killed"
    assert not report.failed
    _, sharded = runs
    vol = open_volume(out)
    assert vol.shards == BLOCK
    np.testing.assert_array_equal(vol.read(), open_volume(sharded["fragments_url"]).read())
    np.testing.assert_array_equal(tensorstore_read(out), vol.read())


def _killing_block():
    from tests.support.sharding import FragmentsKilledOnce

    return FragmentsKilledOnce


def test_boundaries_are_sharded_at_scale_and_equal_unsharded(tmp_path, client, monkeypatch):
    from pipeline.stages.predict import predict
    from pipeline.synthetic.volume import make_volume
    from tests.support.predict import tiny_net, write_input

    raw = make_volume((16, 32, 64), seed=2).raw
    url = write_input(str(tmp_path / "in.zarr/raw"), raw)
    opts = dict(client=client, progress=False, patch=(16, 16, 16), block=(16, 32, 32))
    opts.update(chunks=(16, 16, 16), dtype="float32", device="cpu")
    predict(tiny_net(1), url, str(tmp_path / "plain.zarr/b"), **opts)
    monkeypatch.setattr("pipeline.io.volume.SHARD_ABOVE", 1)
    predict(tiny_net(1), url, str(tmp_path / "sharded.zarr/b"), **opts)
    plain, sharded = (
        open_volume(str(tmp_path / "plain.zarr/b")),
        open_volume(str(tmp_path / "sharded.zarr/b")),
    )
    assert plain.shards is None and sharded.shards == (16, 32, 32)
    np.testing.assert_array_equal(sharded.read(), plain.read())
    assert stored_files(Path(sharded.url) / "s0") == 2 and stored_files(Path(plain.url) / "s0") == 8
    np.testing.assert_array_equal(tensorstore_read(sharded.url), plain.read())
