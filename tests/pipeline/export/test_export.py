"""Export to Neuroglancer precomputed: layers read back equal through cloud-volume, pyramids
equal their whole-volume downsampling, meshes and skeletons exist for every big segment and lie
on it, segment properties hold the true sizes, and bad input is refused clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.export.objects import ObjectParams
from pipeline.export.precomputed import export
from pipeline.lut import Lut, lut_bytes
from pipeline.scales import downsample_mean, downsample_mode, level_factors
from tests.support.export_data import image_for, voronoi_labels, write_zarr

MIN_SIZE = 3000


@pytest.fixture(scope="module")
def exported(tmp_path_factory, request):
    client = request.getfixturevalue("client")
    tmp = tmp_path_factory.mktemp("export")
    labels = voronoi_labels((40, 72, 80), n=24, seed=1)
    # a blob inside the volume that straddles block faces (z, y and x = 32)
    z, y, x = np.ogrid[:40, :72, :80]
    labels[((z - 28) / 8.0) ** 2 + ((y - 32) / 12.0) ** 2 + ((x - 33) / 10.0) ** 2 <= 1] = 99
    image = image_for(labels)
    img_url = write_zarr(tmp / "in.zarr" / "raw", image)
    seg_url = write_zarr(tmp / "in.zarr" / "seg", labels)
    out = tmp / "ng"
    params = ObjectParams(min_size=MIN_SIZE, skeleton_const_vox=10)
    result = export(
        str(out),
        image_url=img_url,
        segmentation_url=seg_url,
        levels=3,
        chunks=(16, 16, 16),
        objects=params,
        object_block=(32, 32, 32),  # 2 x 3 x 3 blocks: every segment crosses block faces
        client=client,
        progress=False,
    )
    return {"out": out, "labels": labels, "image": image, "result": result, "tmp": tmp}


def _cv(path, mip=0):
    from cloudvolume import CloudVolume

    return CloudVolume(f"file://{path}", mip=mip, progress=False)


def _read(path, mip=0):
    return np.asarray(_cv(path, mip)[:, :, :])[..., 0].transpose(2, 1, 0)


def test_layers_read_back_equal_at_every_level(exported):
    out, labels, image = exported["out"], exported["labels"], exported["image"]
    np.testing.assert_array_equal(_read(out / "image"), image)
    np.testing.assert_array_equal(_read(out / "segmentation"), labels)
    info = json.loads((out / "segmentation" / "info").read_text())
    assert len(info["scales"]) == 3
    assert info["scales"][0]["encoding"] == "compressed_segmentation"
    assert [s["resolution"] for s in info["scales"]] == [[10, 10, 10], [20, 20, 20], [40, 40, 40]]
    # blockwise pyramids equal downsampling the whole volume at once
    ref_img, ref_seg = image, labels
    for mip in (1, 2):
        ref_img = downsample_mean(ref_img, (2, 2, 2))
        ref_seg = downsample_mode(ref_seg, (2, 2, 2))
        np.testing.assert_array_equal(_read(out / "image", mip), ref_img)
        np.testing.assert_array_equal(_read(out / "segmentation", mip), ref_seg)


def _near_segment(vertices_nm: np.ndarray, labels: np.ndarray, seg: int, r: int = 2) -> float:
    """Fraction of vertices with a voxel of ``seg`` within ``r`` voxels (meshes are made at
    scale level 1 by default: its voxels are 2x2x2 of these)."""
    from scipy import ndimage

    grown = ndimage.binary_dilation(labels == seg, np.ones((2 * r + 1,) * 3, bool))
    vox = np.floor(vertices_nm[:, ::-1] / 10).astype(int)
    vox = np.clip(vox, 0, np.array(labels.shape) - 1)
    return float(grown[tuple(vox.T)].mean())


def test_meshes_and_skeletons_for_every_big_segment(exported):
    out, labels = exported["out"], exported["labels"]
    cv = _cv(out / "segmentation")
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    big = ids[counts >= MIN_SIZE]
    assert len(big) >= 10
    for seg in big.tolist():
        where = np.argwhere(labels == seg)
        lo = (where.min(0) * 10)[::-1]  # nm, xyz
        hi = ((where.max(0) + 1) * 10)[::-1]
        mesh = cv.mesh.get(seg)
        mesh = mesh[seg] if isinstance(mesh, dict) else mesh
        assert len(mesh.faces) > 20, seg
        # the surface lies on the segment: within the simplification error (4 voxels) of its
        # bounding box, and nearly every vertex next to one of its voxels
        assert np.all(mesh.vertices.min(0) >= lo - 40) and np.all(mesh.vertices.max(0) <= hi + 40)
        assert _near_segment(mesh.vertices, labels, seg) > 0.95, seg
        skel = cv.skeleton.get(seg)
        assert len(skel.vertices) >= 2 and len(skel.edges) >= 1, seg
        # skeletons are traced at level 1 too: nearly every vertex within a voxel of the segment
        assert _near_segment(skel.vertices, labels, seg, r=1) > 0.9, seg
    small = ids[counts < MIN_SIZE]
    assert len(small) >= 1
    assert not set(small.tolist()) & set(_shard_ids(out / "segmentation" / "mesh"))


def _shard_ids(folder) -> list[int]:
    """Every segment id in the shard files of ``folder``, decoded as Neuroglancer does."""
    from pipeline.export.sharding import read_index

    spec = json.loads((folder / "info").read_text())["sharding"]
    return [s for f in sorted(folder.glob("*.shard")) for s in read_index(f.read_bytes(), spec)]


def test_meshes_are_closed_across_block_seams(exported):
    """A segment that touches no volume face has a watertight merged mesh: every edge is shared
    by exactly two triangles, so the seams between blocks were stitched."""
    out, labels = exported["out"], exported["labels"]
    cv = _cv(out / "segmentation")
    inner = set(np.unique(labels[1:-1, 1:-1, 1:-1]).tolist()) - {0}
    for face in (
        labels[0],
        labels[-1],
        labels[:, 0],
        labels[:, -1],
        labels[:, :, 0],
        labels[:, :, -1],
    ):
        inner -= set(np.unique(face).tolist())
    ids, counts = np.unique(labels, return_counts=True)
    checked = 0
    for seg in sorted(inner):
        if counts[ids == seg][0] < MIN_SIZE:
            continue
        mesh = cv.mesh.get(seg)
        mesh = mesh[seg] if isinstance(mesh, dict) else mesh
        f = mesh.faces.astype(np.int64)
        edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        _, uses = np.unique(edges, axis=0, return_counts=True)
        assert (uses == 2).mean() > 0.99, (seg, (uses != 2).sum())
        checked += 1
    assert checked >= 1


def test_segment_properties_hold_sizes(exported):
    out, labels = exported["out"], exported["labels"]
    props = json.loads((out / "segmentation" / "segment_properties" / "info").read_text())
    assert props["@type"] == "neuroglancer_segment_properties"
    ids = [int(i) for i in props["inline"]["ids"]]
    sizes = next(p for p in props["inline"]["properties"] if p["id"] == "size")["values"]
    ref_ids, ref_counts = np.unique(labels[labels > 0], return_counts=True)
    assert dict(zip(ids, sizes, strict=True)) == dict(
        zip(ref_ids.tolist(), ref_counts.tolist(), strict=True)
    )


def test_viewer_state_names_all_layers(exported):
    out = exported["out"]
    saved = json.loads((out / "viewer_state.json").read_text())
    names = [layer["name"] for layer in saved["state"]["layers"]]
    assert names == ["image", "segmentation"]
    assert saved["url"].startswith("#!") and "appspot" not in saved["url"]  # no hosted viewer
    assert saved["state"]["layers"][1]["source"] == f"precomputed://{saved['base']}/segmentation"


def test_export_fragments_through_a_lookup_table_with_annotations(exported, client):
    """A proofreading version is exported as fragments + table, relabelled per block."""
    tmp, labels = exported["tmp"], exported["labels"]
    # fragments: split every cell in two along x; the table maps both halves back to the cell
    frags = labels * 2 + (np.arange(labels.shape[2]) >= 40)[None, None, :].astype(np.uint64)
    frags[labels == 0] = 0
    frag_url = write_zarr(tmp / "f.zarr" / "fragments", frags)
    f_ids = np.unique(frags[frags > 0])
    lut_path = tmp / "lut.parquet"
    lut_path.write_bytes(lut_bytes(Lut.from_arrays(f_ids, f_ids // 2)))
    cands = {
        "candidates": [
            {"rank": 1, "score": 0.9, "error": "split_error", "point_nm": [100, 200, 300]},
            {"rank": 2, "score": 0.7, "error": "merge_error", "point_nm": [200, 300, 400]},
        ]
    }
    (tmp / "cands.json").write_text(json.dumps(cands))
    out = tmp / "ng_lut"
    export(
        str(out),
        segmentation_url=frag_url,
        lut=str(lut_path),
        candidates=str(tmp / "cands.json"),
        levels=1,
        chunks=(16, 16, 16),
        objects=ObjectParams(meshes=False, skeletons=False),
        client=client,
        progress=False,
    )
    np.testing.assert_array_equal(_read(out / "segmentation"), labels)
    ann = json.loads((out / "annotations" / "info").read_text())
    assert ann["annotation_type"] == "point" and ann["spatial"][0]["limit"] == 2
    state = json.loads((out / "viewer_state.json").read_text())["state"]
    assert [layer["type"] for layer in state["layers"]] == ["segmentation", "annotation"]


def test_bad_input_is_refused_with_the_input_named(tmp_path, client):
    with pytest.raises(InputError, match="nothing to export"):
        export(str(tmp_path / "o"), client=client, progress=False)
    f = write_zarr(tmp_path / "x.zarr" / "prob", np.zeros((8, 8, 8), np.float32))
    with pytest.raises(InputError, match="prob.*float32.*integer labels"):
        export(str(tmp_path / "o"), segmentation_url=f, client=client, progress=False)
    with pytest.raises(InputError, match="no Zarr volume"):
        export(str(tmp_path / "o"), image_url=str(tmp_path / "missing.zarr/raw"), client=client)


def test_downsampling_rules():
    labels = np.zeros((2, 2, 4), np.uint64)
    labels[:, :, :2] = [[[0, 5], [5, 0]], [[0, 0], [0, 0]]]  # cell 1: only two 5s, rest 0
    labels[:, :, 2:] = [[[3, 3], [7, 7]], [[7, 3], [9, 9]]]  # cell 2: 3 and 7 tie (3 each)
    out = downsample_mode(labels, (2, 2, 2))
    assert out.shape == (1, 1, 2) and out[0, 0, 0] == 5 and out[0, 0, 1] in (3, 7)
    assert downsample_mode(np.zeros((2, 2, 2), np.uint64), (2, 2, 2)).item() == 0
    img = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    assert downsample_mean(img, (2, 2, 2)).item() == 3  # 3.5 truncated, as tinybrain does
    # (z, y, x) axes: a 1x2x2 factor keeps z and halves y, x
    ramp = np.arange(4 * 6 * 8, dtype=np.float32).reshape(4, 6, 8)
    np.testing.assert_allclose(
        downsample_mean(ramp, (1, 2, 2)), ramp.reshape(4, 3, 2, 4, 2).mean(axis=(2, 4))
    )
    # a mode always picks a most frequent non-zero label of its cell
    rng = np.random.default_rng(0)
    rand = rng.integers(0, 6, (8, 10, 12)).astype(np.uint64)
    down = downsample_mode(rand, (1, 2, 2))
    cells = rand.reshape(8, 5, 2, 6, 2).transpose(0, 1, 3, 2, 4).reshape(8, 5, 6, 4)
    counts = (cells[..., :, None] == cells[..., None, :]).sum(-1) * (cells > 0)
    picked = ((cells == down[..., None]) * (cells > 0)).sum(-1)
    assert np.all(picked == counts.max(-1))
    # odd sizes give partial cells; anisotropic voxels are not halved in z until x/y catch up
    assert downsample_mode(np.ones((3, 3, 3), np.uint64), (2, 2, 2)).shape == (2, 2, 2)
    assert level_factors((40, 10, 10), (100, 1000, 1000), 4) == [(1, 2, 2), (1, 2, 2), (2, 2, 2)]


def test_export_command(exported, capsys):
    from workflows.cli.app import main

    seg = str(exported["tmp"] / "in.zarr" / "seg")
    out = str(exported["tmp"] / "ng_cli")
    args = ["export", out, "--segmentation", seg, "--levels", "2", "--chunks", "16,32,32"]
    args += ["--no-skeletons", "--min-size", "5000", "--cluster", "threads:1", "--json"]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(printed["layers"]) == {"segmentation"} and "#!" in printed["url"]
    np.testing.assert_array_equal(
        _read(exported["tmp"] / "ng_cli" / "segmentation"), exported["labels"]
    )
    assert main(["export", out]) == 2
    assert "nothing to export" in capsys.readouterr().err
    assert main(["export", out + "2", "--segmentation", seg, "--mesh-level", "7"]) == 2
    assert "--mesh-level 7" in capsys.readouterr().err
    legacy = str(exported["tmp"] / "ng_legacy")
    args = ["export", legacy, "--segmentation", seg, "--levels", "1", "--unsharded"]
    assert main([*args, "--no-skeletons", "--cluster", "threads:1"]) == 0
    assert (exported["tmp"] / "ng_legacy" / "segmentation" / "mesh" / "99:0").exists()
