"""The pieces of the proofreading viewer that need no browser: the fragments seen through a
version's table, meshes made from a segment's fragments (and remade after an edit), the ranked
candidates one at a time, Neuroglancer's source forms as volume URLs, and the CLI command."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.io.urls import canonical_url, volume_url
from pipeline.io.volume import open_volume
from pipeline.lut import Lut, apply_lut
from pipeline.proofread.review import CandidateQueue
from pipeline.proofread.segview import SegmentArray, SegmentMeshes, segment_box
from tests.support.export_data import neurons_and_fragments, write_zarr
from workflows.cli.app import main


@pytest.fixture(scope="module")
def frags(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("segview")
    neurons, fragments, _ = neurons_and_fragments(seed=4)
    url = write_zarr(tmp / "in.zarr" / "fragments", fragments, chunks=(16, 24, 24))
    ids = np.unique(fragments)
    seg = np.array([int(neurons[fragments == f][0]) for f in ids], np.uint64)
    return {"url": url, "fragments": fragments, "neurons": neurons, "lut": Lut(ids, seg)}


def test_segment_array_maps_any_box_through_the_table_and_follows_a_swap(frags):
    arr = SegmentArray(open_volume(frags["url"]), frags["lut"])
    whole = apply_lut(frags["fragments"], frags["lut"])
    assert arr.shape == frags["fragments"].shape and arr.dtype == np.uint64
    np.testing.assert_array_equal(arr[3:20, 5:41, 0:48], whole[3:20, 5:41, 0:48])
    np.testing.assert_array_equal(arr[:, :, :], frags["neurons"])
    merged = Lut(
        frags["lut"].fragment, np.where(frags["lut"].segment == 2, 1, frags["lut"].segment)
    )
    arr.set_lut(merged)
    assert not np.any(arr[:, :, :] == 2) and np.sum(arr[:, :, :] == 1) == np.sum(
        frags["neurons"] <= 2
    )


def test_meshes_cover_the_segment_and_follow_an_edit(frags):
    vol = open_volume(frags["url"])
    arr = SegmentArray(vol, frags["lut"])
    meshes = SegmentMeshes(arr)

    def extent(data: bytes) -> tuple[np.ndarray, np.ndarray]:
        n = int(np.frombuffer(data[:4], np.uint32)[0])
        v = np.frombuffer(data[4 : 4 + 12 * n], np.float32).reshape(-1, 3) / 1e-9 / 10
        return v.min(0), v.max(0)

    for labels in ([1], [1, 2]):
        if len(labels) == 2:  # merge 2 into 1: the mesh of 1 now covers both neurons
            seg = np.where(np.isin(frags["lut"].segment, labels), 1, frags["lut"].segment)
            arr.set_lut(Lut(frags["lut"].fragment, seg.astype(np.uint64)))
        lo, hi = extent(meshes.mesh(1))
        vox = np.argwhere(np.isin(frags["neurons"], labels))
        # marching cubes passes half a voxel outside the outermost voxel centres
        np.testing.assert_allclose(lo, np.maximum(vox.min(0) - 0.5, 0), atol=0.51)
        np.testing.assert_allclose(hi, vox.max(0) + 0.5, atol=0.51)
    assert meshes.mesh(999) is None  # no such segment: no mesh
    begin, end = segment_box(frags["lut"].fragment[:3], vol)
    assert begin == (0, 0, 0) and end == tuple(vol.shape)  # no petaseg id scheme: whole volume


def test_candidates_come_one_at_a_time_with_current_segments():
    lut = Lut(np.array([5, 6, 7], np.uint64), np.array([5, 6, 5], np.uint64))
    queue = CandidateQueue(
        [
            {
                "rank": 2,
                "error": "merge_error",
                "score": 0.7,
                "segments": [5],
                "point_nm": [1, 2, 3],
                "proposal": {"source_fragment": 5, "sink_fragment": 7},
            },
            {
                "rank": 1,
                "error": "split_error",
                "score": 0.9,
                "segments": [5, 6],
                "point_nm": [4, 5, 6],
                "proposal": {"fragments": [7, 6]},
            },
        ]
    )
    first = queue.next(lut)
    assert (first.rank, first.segments, first.score) == (1, [5, 6], 0.9)
    assert "candidate 1/2" in first.line and "alt+m merges" in first.line
    second = queue.next(lut)
    assert second.segments == [5] and "alt+x splits" in second.reason
    assert queue.next(lut) is None


def test_neuroglancer_source_forms_open_the_same_volume(frags):
    url = frags["url"]
    for form in (f"zarr://{url}", f"zarr3://{url}", f"zarr://file://{url}", f"{url}|zarr3:"):
        vol = open_volume(form)
        assert vol.shape == open_volume(url).shape, form
        assert canonical_url(form) == canonical_url(url), form
    assert volume_url("gs://b/seg|precomputed:") == "precomputed://gs://b/seg"
    assert volume_url("precomputed://gs://b/seg") == "precomputed://gs://b/seg"


def test_proofread_view_command_serves_on_127_0_0_1(frags, tmp_path, capsys):
    log = str(tmp_path / "edits.sqlite")
    lut_dir = tmp_path / "lut.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"fragment": frags["lut"].fragment, "segment": frags["lut"].segment}), lut_dir
    )
    assert main(["proofread", "init", log, "--lut", str(lut_dir), "--fragments", frags["url"]]) == 0
    capsys.readouterr()
    assert main(["proofread", "view", log, "--seconds", "0.3", "--author", "ann"]) == 0
    out = capsys.readouterr().out
    assert "viewer: http://127.0.0.1:" in out and "alt+m merge" in out, out
    assert "appspot" not in out
    assert main(["proofread", "view", str(tmp_path / "none.sqlite"), "--seconds", "0.1"]) == 2
    assert "no edit log" in capsys.readouterr().err
    bad = ["proofread", "view", log, "--image", str(tmp_path / "no.zarr/raw"), "--seconds", "0.1"]
    assert main(bad) == 2
    assert "no.zarr/raw" in capsys.readouterr().err
