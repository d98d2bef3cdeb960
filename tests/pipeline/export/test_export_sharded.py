"""The sharded multi-resolution export: what Neuroglancer reads (shard files, multilod_draco
manifests and Draco fragments, sharded skeletons), few files, the legacy format behind an option,
and the incremental re-export after a proofreading edit rewriting only the shards it touches."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.export.objects import ObjectParams
from pipeline.export.precomputed import export
from pipeline.export.sharding import read_index
from pipeline.lut import Lut
from tests.support.export_data import voronoi_labels, write_zarr

MIN_SIZE = 2000


def _cv(path):
    from cloudvolume import CloudVolume

    return CloudVolume(f"file://{path}", progress=False)


def _index(folder):
    spec = json.loads((folder / "info").read_text())["sharding"]
    return {f.name: read_index(f.read_bytes(), spec) for f in sorted(folder.glob("*.shard"))}


@pytest.fixture(scope="module")
def proofread(tmp_path_factory, request):
    """Fragments (every cell split in two along x), an edit log over them, and an export of
    version 0 with meshes and skeletons."""
    from pipeline.proofread import EditLog

    client = request.getfixturevalue("client")
    tmp = tmp_path_factory.mktemp("sharded")
    labels = voronoi_labels((32, 96, 96), n=30, seed=3)
    frags = labels * 2 + (np.arange(96) >= 48)[None, None, :].astype(np.uint64)
    frags[labels == 0] = 0
    frag_url = write_zarr(tmp / "f.zarr" / "fragments", frags)
    ids = np.unique(frags[frags > 0])
    log = tmp / "edits.sqlite"
    EditLog.create(log, Lut.from_arrays(ids, ids // 2), frag_url).close()
    out = tmp / "ng"
    params = ObjectParams(min_size=MIN_SIZE, skeleton_const_vox=10)
    kw = dict(levels=3, chunks=(16, 32, 32), objects=params, object_block=(16, 16, 16))
    export(
        str(out), segmentation_url=frag_url, edit_log=str(log), client=client, progress=False, **kw
    )
    return {"out": out, "labels": labels, "frag_url": frag_url, "log": log, "kw": kw, "tmp": tmp}


def test_sharded_files_read_back_like_neuroglancer(proofread):
    import DracoPy
    from cloudvolume.datasource.precomputed.mesh.multilod import (
        MultiLevelPrecomputedMeshManifest,
    )

    seg_dir, labels = proofread["out"] / "segmentation", proofread["labels"]
    mesh_info = json.loads((seg_dir / "mesh" / "info").read_text())
    assert mesh_info["@type"] == "neuroglancer_multilod_draco"
    assert mesh_info["sharding"]["@type"] == "neuroglancer_uint64_sharded_v1"
    skel_info = json.loads((seg_dir / "skeletons" / "info").read_text())
    assert skel_info["sharding"]["data_encoding"] == "gzip"
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    big = set(ids[counts >= MIN_SIZE].tolist())
    assert len(big) >= 10
    meshes, skels = _index(seg_dir / "mesh"), _index(seg_dir / "skeletons")
    assert set().union(*meshes.values()) == big
    assert set().union(*skels.values()) == big
    assert len(meshes) >= 2  # several shards, each one file
    assert sorted(p.name for p in (seg_dir / "mesh").iterdir()) == sorted([*meshes, "info"])
    assert not (seg_dir / "objects" / "0").exists()  # the map step's pieces are gone
    # one entry decoded by hand: manifest at the indexed range, Draco fragments before it
    name, index = next(iter(meshes.items()))
    data = (seg_dir / "mesh" / name).read_bytes()
    seg, (start, end) = next(iter(index.items()))
    manifest = MultiLevelPrecomputedMeshManifest.from_binary(data[start:end], seg)
    assert manifest.num_lods >= 1 and manifest.num_fragments_per_lod[0] >= 1
    sizes = np.concatenate([np.atleast_1d(o) for o in manifest.fragment_offsets])
    first = data[start - int(sizes.sum()) : start - int(sizes.sum()) + int(sizes[0])]
    points = np.asarray(DracoPy.decode(first).points)
    assert points.min() >= 0 and points.max() < 2**16 and np.allclose(points, np.rint(points))
    assert max(_cv(seg_dir).mesh.get(s)[s].vertices.shape[0] for s in sorted(big)[:3]) > 0


def test_meshes_and_skeletons_lie_on_their_segments(proofread):
    seg_dir, labels = proofread["out"] / "segmentation", proofread["labels"]
    cv = _cv(seg_dir)
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    for seg in ids[counts >= MIN_SIZE].tolist():
        mesh = cv.mesh.get(seg)[seg]
        where = np.argwhere(labels == seg)
        lo, hi = (where.min(0) * 10)[::-1], ((where.max(0) + 1) * 10)[::-1]
        assert np.all(mesh.vertices.min(0) >= lo - 40), seg
        assert np.all(mesh.vertices.max(0) <= hi + 40), seg
        skel = cv.skeleton.get(seg)  # skeletonized at level 2 (40 nm), meshed at level 1
        assert len(skel.edges) >= 1
        assert np.all(skel.vertices.min(0) >= lo - 80), seg
        assert np.all(skel.vertices.max(0) <= hi + 80), seg
    props = json.loads((seg_dir / "segment_properties" / "info").read_text())
    sizes = next(p for p in props["inline"]["properties"] if p["id"] == "size")["values"]
    got = dict(zip((int(i) for i in props["inline"]["ids"]), sizes, strict=True))
    assert got == dict(zip(ids.tolist(), counts.tolist(), strict=True))


def test_incremental_reexport_touches_only_the_edited_segments(proofread, client):
    from pipeline.proofread import EditLog

    out, labels = proofread["out"], proofread["labels"]
    mesh_dir = out / "segmentation" / "mesh"
    before = _index(mesh_dir)
    owner = {s: name for name, idx in before.items() for s in idx}
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    big = sorted(ids[counts >= MIN_SIZE].tolist())
    # two big segments in different shards, so at least one shard stays untouched
    a = big[0]
    b = next(s for s in big if owner[s] != owner[a])
    stat = {p.name: p.stat().st_mtime_ns for p in mesh_dir.glob("*.shard")}
    raw = {p.name: p.read_bytes() for p in mesh_dir.glob("*.shard")}
    with EditLog(proofread["log"]) as log:
        log.merge(a, b, reason="test")
    result = export(
        str(out), segmentation_url=proofread["frag_url"], edit_log=str(proofread["log"]),
        client=client, progress=False, **proofread["kw"],
    )  # fmt: skip
    assert result.seconds.get("segmentation_incremental") is not None
    after = _index(mesh_dir)
    touched_shards = {owner[a], owner[b]}
    for name in stat:
        if name in touched_shards:
            continue  # rewritten
        assert mesh_dir.joinpath(name).stat().st_mtime_ns == stat[name], name
        assert mesh_dir.joinpath(name).read_bytes() == raw[name]
    assert stat.keys() - touched_shards  # at least one shard left alone
    keep, drop = min(a, b), max(a, b)
    all_after = set().union(*after.values())
    assert keep in all_after and drop not in all_after
    # the merged segment's mesh spans both; untouched entries of rewritten shards are kept
    merged = _cv(out / "segmentation").mesh.get(keep)[keep]
    where = np.argwhere((labels == a) | (labels == b))
    assert np.all(merged.vertices.max(0) >= (where.max(0) * 10)[::-1] - 40)
    assert np.all(merged.vertices.min(0) <= (where.min(0) * 10 + 10)[::-1] + 40)
    assert all_after == (set(big) - {drop})
    seg = np.asarray(_cv(out / "segmentation")[:, :, :])[..., 0].transpose(2, 1, 0)
    want = np.where(labels == drop, keep, labels)
    np.testing.assert_array_equal(seg, want)


def test_legacy_format_behind_an_option(tmp_path, client):
    labels = voronoi_labels((24, 48, 48), n=8, seed=2)
    url = write_zarr(tmp_path / "in.zarr" / "seg", labels)
    params = ObjectParams(min_size=500, skeletons=False, format="legacy")
    export(str(tmp_path / "ng"), segmentation_url=url, levels=1, chunks=(16, 16, 16),
           objects=params, client=client, progress=False)  # fmt: skip
    seg = int(np.unique(labels[labels > 0])[0])
    assert (tmp_path / "ng" / "segmentation" / "mesh" / f"{seg}:0").exists()
    assert not list((tmp_path / "ng" / "segmentation" / "mesh").glob("*.shard"))


def test_large_meshes_get_several_levels_of_detail():
    import DracoPy
    import zmesh
    from cloudvolume.datasource.precomputed.mesh.multilod import (
        MultiLevelPrecomputedMeshManifest,
    )

    from pipeline.export.multires import multires_entry

    z, y, x = np.ogrid[:140, :140, :140]
    ball = ((z - 70) ** 2 + (y - 70) ** 2 + (x - 70) ** 2 <= 60**2).astype(np.uint32)
    mesher = zmesh.Mesher((1, 1, 1))
    mesher.mesh(ball)
    mesh = mesher.get(1, normals=False)
    entry, head = multires_entry(1, mesh)
    manifest = MultiLevelPrecomputedMeshManifest.from_binary(entry[-head:], 1)
    assert manifest.num_lods >= 2 and list(manifest.num_fragments_per_lod)[-1] == 1
    assert manifest.num_fragments_per_lod[0] > manifest.num_fragments_per_lod[1]
    # lod 0 fragments put back in place cover the ball's surface (radius 60 voxels)
    sizes = np.concatenate([np.atleast_1d(o) for o in manifest.fragment_offsets])
    pos, start, faces = manifest.fragment_positions[0], 0, [0, 0]
    for i in range(manifest.num_fragments_per_lod[0]):
        d = DracoPy.decode(entry[start : start + int(sizes[i])])
        start += int(sizes[i])
        v = (np.asarray(d.points) / (2**16 - 1) + pos[i]) * manifest.chunk_shape
        r = np.linalg.norm(v + manifest.grid_origin - 70, axis=1)
        assert np.all(np.abs(r - 60) < 2.5)
        faces[0] += len(d.faces)
    coarse = DracoPy.decode(entry[int(sizes[:-1].sum()) : int(sizes.sum())])
    assert len(coarse.faces) < 0.6 * faces[0]  # each level halves the triangles


def test_skeletons_come_from_a_coarser_level_than_meshes(proofread):
    record = json.loads((proofread["out"] / "segmentation" / "objects" / "export.json").read_text())
    assert (record["mesh_level"], record["skeleton_level"]) == (1, 2)


def test_default_mesh_level_keeps_min_size_segments():
    from pipeline.export import default_mesh_level, default_skeleton_level

    levels = {"scales": [{"resolution": [r, r, r]} for r in (10, 20, 40, 80)]}
    assert default_skeleton_level(levels, 1000) == 2  # 64 voxels per cell: 15 left of 1000
    assert default_skeleton_level(levels, 4096) == 3 and default_skeleton_level(levels, 8) == 0

    iso = {"scales": [{"resolution": [r, r, r]} for r in (10, 20, 40, 80)]}
    assert default_mesh_level(iso, 1000) == 1  # 8 voxels per cell: 125 left of 1000
    assert default_mesh_level(iso, 64) == 0 and default_mesh_level(iso, 10**6) == 3
    aniso = {"scales": [{"resolution": r} for r in ([10, 10, 40], [20, 20, 40], [40, 40, 80])]}
    assert default_mesh_level(aniso, 1000) == 1 and default_mesh_level(aniso, 2048) == 2
