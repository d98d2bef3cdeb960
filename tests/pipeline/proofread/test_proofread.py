"""The proofreading edit log: merge/split/undo/redo on a real region graph (the graph stage run on
a synthetic volume), exact restoration on undo, durable versions across a crash, optimistic
conflicts between racing edits, and clear errors for bad edits and damaged files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.lut import Lut
from pipeline.proofread.editlog import EditLog
from pipeline.proofread.store import EditConflict, EditLogError
from pipeline.proofread.versions import VersionFileError
from tests.conftest import REPO as REPO_ROOT
from tests.support.export_data import write_zarr
from tests.support.proofread_world import proofread_world

REPO = str(REPO_ROOT)


@pytest.fixture(scope="module")
def world(tmp_path_factory, request):
    """Fragments + region graph of 6 neurons; the starting table merges neurons 1 and 2 into one
    segment (a merge error) and cuts neuron 3 into two segments (a split error)."""
    return proofread_world(tmp_path_factory.mktemp("proofread"), request.getfixturevalue("client"))


@pytest.fixture
def log(world, tmp_path):
    el = EditLog.create(tmp_path / "edits.sqlite", world["lut"], world["frag_url"], world["root"])
    yield el
    el.close()


def _point_in(world, neuron: int) -> list[float]:
    """A voxel centre (nm) deep inside a neuron."""
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(world["neurons"] == neuron)
    z, y, x = np.unravel_index(np.argmax(dist), dist.shape)
    return [(z + 0.5) * 10, (y + 0.5) * 10, (x + 0.5) * 10]


def _segment_at(world, lut: Lut, point) -> int:
    z, y, x = (int(c // 10) for c in point)
    return int(lut.lookup(np.array([world["fragments"][z, y, x]], np.uint64))[0])


def test_merge_then_undo_restores_the_table_exactly_and_redo_reapplies(world, log):
    before = log.lut()
    a, b = world["seg_of_group"][3], world["seg_of_group"][30]
    r = log.merge(a, b, author="ana", reason="one neuron")
    merged = log.lut()
    assert r.version == 1 and r.segments == [min(a, b), max(a, b)]
    assert set(np.unique(merged.segment).tolist()) == set(np.unique(before.segment).tolist()) - {
        max(a, b)
    }
    log.undo(author="ana", reason="oops")
    after = log.lut()
    np.testing.assert_array_equal(after.fragment, before.fragment)
    np.testing.assert_array_equal(after.segment, before.segment)
    log.redo(author="bo")
    np.testing.assert_array_equal(log.lut().segment, merged.segment)
    assert log.head == 3
    ops = [(e["op"], e["author"], e["reason"]) for e in log.log()]
    assert ops == [("merge", "ana", "one neuron"), ("undo", "ana", "oops"), ("redo", "bo", "")]
    assert all(e["time"].endswith("+00:00") for e in log.log())
    # every version stays readable: version 0 is the starting table
    np.testing.assert_array_equal(log.lut(0).segment, before.segment)
    log.undo()
    with pytest.raises(InputError, match="nothing to undo"):
        log.undo()


def test_split_separates_the_named_points_along_the_membrane(world, log):
    merged = world["seg_of_group"][1]
    p1, p2 = _point_in(world, 1), _point_in(world, 2)
    assert _segment_at(world, log.lut(), p1) == _segment_at(world, log.lut(), p2) == merged
    r = log.split(merged, [p1], [p2], author="cy", reason="two neurons")
    lut = log.lut()
    s1, s2 = _segment_at(world, lut, p1), _segment_at(world, lut, p2)
    assert s1 == merged and s2 == r.segments[1] and s1 != s2
    # the cut follows the strong boundary: each side is one neuron (tiny fragments squeezed
    # against the membrane have strong boundary on every face and may go either way)
    seg = lut.lookup(world["fragments"].ravel()).reshape(world["fragments"].shape)
    for neuron, side in ((1, s1), (2, s2)):
        assert (seg[world["neurons"] == neuron] == side).mean() > 0.99
    # undo of a split gives the merged segment back, the new id disappears
    log.undo()
    np.testing.assert_array_equal(log.lut().segment, world["lut"].segment)
    assert r.segments[1] not in log.segments().tolist()


def test_a_crash_between_writing_and_committing_leaves_the_previous_version(world, log):
    a, b = world["seg_of_group"][3], world["seg_of_group"][30]
    log.merge(a, b)
    before = log.lut()
    files_before = set(os.listdir(log.folder))
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {REPO!r})
        from pipeline.proofread.editlog import EditLog
        el = EditLog({str(log.path)!r})
        def crash(*args, **kwargs):
            os._exit(9)  # the process dies inside the transaction, after the version file
        el._record = crash
        el.merge({world["seg_of_group"][4]}, {world["seg_of_group"][5]})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == 9, proc.stderr.decode()
    orphans = set(os.listdir(log.folder)) - files_before
    assert len(orphans) == 1  # the complete, unreferenced version file of the lost edit
    with EditLog(log.path) as again:
        assert again.head == 1
        np.testing.assert_array_equal(again.lut().segment, before.segment)
        assert [e["op"] for e in again.log()] == ["merge"]
        r = again.merge(world["seg_of_group"][4], world["seg_of_group"][5])  # the log works on
        assert r.version == 2


def test_racing_edits_on_one_segment_the_loser_gets_a_clear_error(world, log):
    s3, s30, s4, s5 = (world["seg_of_group"][k] for k in (3, 30, 4, 5))
    other = EditLog(log.path)
    try:
        # `other` computes its edit from version 0 while `log` commits an edit of the same segment
        real_commit = other._commit

        def commit_after_rival(*args, **kwargs):
            log.merge(s3, s4, author="winner")
            return real_commit(*args, **kwargs)

        other._commit = commit_after_rival
        with pytest.raises(EditConflict, match=r"conflicts with edit #1 \(merge by winner"):
            other.merge(s3, s30, author="loser")
        other._commit = real_commit
        assert log.head == 1 and [e["author"] for e in log.log()] == ["winner"]
        # a stale --expect-version on the same segment is refused the same way
        with pytest.raises(EditConflict, match="changed segment"):
            other.merge(s3, s5, expect_version=0)
        # an edit of other segments computed from the same old version is rebased and kept
        r = other.merge(s5, world["seg_of_group"][6], expect_version=0)
        assert r.version == 2
        lut = log.lut()
        assert _segment_at(world, lut, _point_in(world, 4)) == min(s3, s4)
        assert _segment_at(world, lut, _point_in(world, 6)) == min(s5, world["seg_of_group"][6])
    finally:
        other.close()


def test_bad_edits_are_refused_and_leave_no_version(world, log):
    merged = world["seg_of_group"][1]
    with pytest.raises(InputError, match="unknown segment id 123456789"):
        log.merge(merged, 123456789)
    with pytest.raises(InputError, match="same segment"):
        log.merge(merged, merged)
    with pytest.raises(InputError, match="segment 0 is background"):
        log.split(0, [[5, 5, 5]], [[15, 15, 15]])
    p3 = _point_in(world, 3)
    with pytest.raises(InputError, match=r"lies in segment \d+, not in segment"):
        log.split(merged, [_point_in(world, 1)], [p3])
    with pytest.raises(InputError, match="outside the volume"):
        log.split(merged, [_point_in(world, 1)], [[-50, 0, 0]])
    with pytest.raises(InputError, match="same fragment"):
        p = _point_in(world, 1)
        log.split(merged, [p], [p])
    assert log.head == 0 and log.log() == []


def test_background_points_are_refused(world, tmp_path):
    """Fragments with a background (0) gap: a split point on it is named as background."""
    frags = world["fragments"].copy()
    frags[:, :, 20] = 0
    url = write_zarr(tmp_path / "g.zarr" / "fragments", frags, chunks=(16, 24, 24))
    with EditLog.create(tmp_path / "e.sqlite", world["lut"], url, world["root"]) as el:
        seg = int(el.segments()[0])
        with pytest.raises(InputError, match="background"):
            el.split(seg, [[15, 15, 205]], [[15, 15, 5]])


def test_damaged_files_give_clear_errors(world, log, tmp_path):
    log.merge(world["seg_of_group"][3], world["seg_of_group"][30])
    version_file = next(p for p in log.folder.iterdir() if "-merge-" in p.name)
    data = bytearray(version_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    version_file.write_bytes(bytes(data))
    with EditLog(log.path) as again, pytest.raises(VersionFileError, match="damaged"):
        again.lut()
    bad = tmp_path / "garbage.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(EditLogError, match="corrupted or not a petaseg edit log"):
        EditLog(bad)
    with pytest.raises(EditLogError, match="no edit log at"):
        EditLog(tmp_path / "missing.sqlite")
    with pytest.raises(EditLogError, match="already exists"):
        EditLog.create(log.path, world["lut"])


def test_versions_beyond_a_snapshot_rebuild_exactly(world, log, monkeypatch):
    import pipeline.proofread.editlog as pr

    monkeypatch.setattr(pr, "SNAPSHOT_EVERY", 2)
    s3, s30 = world["seg_of_group"][3], world["seg_of_group"][30]
    tables = [log.lut()]
    for _ in range(3):
        log.merge(s3, s30)
        tables.append(log.lut())
        log.undo()
        tables.append(log.lut())
    snapshots = [p for p in log.folder.iterdir() if "-full-" in p.name]
    assert len(snapshots) == 1 + 3  # version 0, 2, 4, 6
    with EditLog(log.path) as fresh:
        for v, t in enumerate(tables):
            np.testing.assert_array_equal(fresh.lut(v).segment, t.segment)


def test_export_any_version_and_relabel_it(world, log, client):
    from pipeline.io.volume import open_volume
    from pipeline.stages.relabel import run_relabel

    p1, p2 = _point_in(world, 1), _point_in(world, 2)
    log.split(world["seg_of_group"][1], [p1], [p2])
    for version in (0, 1):
        out = str(world["tmp"] / f"lut_v{version}_{log.path.stem}")
        info = log.export(out, version)
        assert info["version"] == version
        seg_url = str(world["tmp"] / "seg.zarr" / f"v{version}_{os.getpid()}_{id(log)}")
        run_relabel(world["frag_url"], out, seg_url, client=client, progress=False)
        seg = open_volume(seg_url).read()
        lut = log.lut(version)
        np.testing.assert_array_equal(
            seg, lut.lookup(world["fragments"].ravel()).reshape(seg.shape)
        )
