"""The segmentation stages blockwise on a small synthetic volume: quality, resumability, id
uniqueness, lookup-table coverage, blockwise relabel == in-memory, the two-level agglomeration,
the commands, and bad input."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest

from pipeline.errors import BlockFailures, InputError
from pipeline.evaluate import evaluate_arrays
from pipeline.io.tables import lut_table, read_json, read_table, table_exists
from pipeline.io.volume import create_volume, open_volume
from pipeline.seg.ids import id_coords, ids_valid
from pipeline.seg.watershed import FragmentParams
from pipeline.stages.fragments import run_fragments
from pipeline.stages.graph import run_graph
from tests.support.labels import voronoi
from tests.support.segmenting import segment
from workflows.cli.app import main

SHAPE = (32, 48, 48)
BLOCK = (16, 16, 16)
CONTEXT = (8, 8, 8)
# sigma_seeds=0: several seeds per cell, so agglomeration has work to do
PARAMS = FragmentParams(sigma_seeds=0.0, min_size=10)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    d = tmp_path_factory.mktemp("seg")
    lab, bnd = voronoi(SHAPE, 12, seed=7)
    vol = create_volume(
        str(d / "in.zarr/boundary"), SHAPE, "float32", (4, 4, 4), chunks=(16, 16, 16)
    )
    vol.write(vol.roi, bnd)
    return d, lab, bnd, vol.url


@pytest.fixture(scope="module")
def segmented(synthetic, client):
    d, lab, _, url = synthetic
    out = str(d / "out.zarr/seg")
    result = segment(url, out, [0.3, 0.7], PARAMS, BLOCK, CONTEXT, client=client)
    return result, lab


def test_segmentation_recovers_cells(segmented):
    result, lab = segmented
    frag = open_volume(result["fragments_url"]).read()
    before = evaluate_arrays(frag, lab)
    after = evaluate_arrays(open_volume(result["segmentations"][1]["segmentation"]).read(), lab)
    assert before["vi_split"] > 0.3 and before["vi_merge"] < 0.05  # over-segmented fragments
    assert after["vi_sum"] < 0.1  # agglomeration at 0.7 recovers the cells


def test_rerun_skips_every_block_and_changes_nothing(segmented, synthetic, client):
    result, _ = segmented
    d, _, _, url = synthetic
    before = [open_volume(s["segmentation"]).read() for s in result["segmentations"]]
    again = segment(
        url,
        str(d / "out.zarr/seg"),
        [0.3, 0.7],
        PARAMS,
        BLOCK,
        CONTEXT,
        client=client,
    )
    assert again["fragments"]["blocks_run"] == 0 and again["graph"]["blocks_run"] == 0
    assert again["fragments"]["blocks_skipped"] == again["fragments"]["blocks_total"] == 18
    for s, b in zip(again["segmentations"], before, strict=True):
        np.testing.assert_array_equal(open_volume(s["segmentation"]).read(), b)


def test_ids_unique_across_blocks(segmented):
    result, _ = segmented
    fvol = open_volume(result["fragments_url"])
    frag = fvol.read()
    scheme = fvol.attrs["petaseg_fragments"]
    ids = np.unique(frag[frag > 0])
    # every block holds only ids whose seed it could see (write ROI + context)
    for z in range(0, SHAPE[0], BLOCK[0]):
        for y in range(0, SHAPE[1], BLOCK[1]):
            for x in range(0, SHAPE[2], BLOCK[2]):
                sub = frag[z : z + 16, y : y + 16, x : x + 16]
                begin = [z - 8, y - 8, x - 8]
                end = [z + 24, y + 24, x + 24]
                assert ids_valid(np.unique(sub[sub > 0]), scheme["shape"], begin, end).all()
    # one id = one basin: an id's voxels across all blocks form one connected piece
    pieces = cc3d.connected_components(frag, connectivity=6, return_N=True)[1]
    assert pieces <= len(ids) * 1.02
    # and an id names its seed: nearly every seed voxel carries its own id
    at_seed = frag[id_coords(ids, SHAPE)]
    assert np.mean(at_seed == ids) > 0.9


def test_lookup_tables_cover_every_fragment_and_relabel_equals_memory(segmented):
    result, _ = segmented
    frag = open_volume(result["fragments_url"]).read()
    ids = np.unique(frag[frag > 0])
    for s in result["segmentations"]:
        meta = read_json(f"{s['lut']}/meta.json")
        n_parts = int(np.prod(meta["scheme"]["grid_shape"]))
        tables = [
            read_table(lut_table(s["lut"], p))
            for p in range(n_parts)
            if table_exists(lut_table(s["lut"], p))
        ]
        fr = np.concatenate([t["fragment"] for t in tables])
        sg = np.concatenate([t["segment"] for t in tables])
        assert len(fr) == len(np.unique(fr))  # one row per fragment
        np.testing.assert_array_equal(np.sort(fr), ids)
        order = np.argsort(fr)
        idx = np.minimum(np.searchsorted(fr[order], frag), len(fr) - 1)
        in_memory = np.where(frag > 0, sg[order][idx], 0)  # the table, whole volume at once
        np.testing.assert_array_equal(open_volume(s["segmentation"]).read(), in_memory)
        assert s["segments"] == len(np.unique(sg))


def test_two_level_agglomeration_matches_global(synthetic, segmented, client):
    d, lab, _, url = synthetic
    result, _ = segmented
    two = segment(
        url,
        str(d / "two.zarr/seg"),
        [0.7],
        PARAMS,
        BLOCK,
        CONTEXT,
        max_global_edges=0,
        local_threshold=0.3,
        client=client,
    )
    info = two["agglomerate"]
    assert info["scheme"] == "two-level"
    assert info["clusters_after_local"] < info["fragments"]
    glob = open_volume(result["segmentations"][1]["segmentation"]).read()
    seg2 = open_volume(two["segmentations"][0]["segmentation"]).read()
    assert evaluate_arrays(seg2, glob, ignore_gt_zero=False)["vi_sum"] < 0.05


def test_stage_commands_equal_segment_command(synthetic, tmp_path):
    _, _, _, url = synthetic
    frag, tables, seg = (
        str(tmp_path / "c.zarr/frag"),
        str(tmp_path / "tables"),
        str(tmp_path / "c.zarr/seg"),
    )
    common = ["--cluster", "threads:2"]
    assert (
        main(
            ["fragments", url, frag, "--block", "16", "--context", "8", "--min-size", "20", *common]
        )
        == 0
    )
    assert main(["graph", frag, url, "--tables", tables, *common]) == 0
    assert main(["agglomerate", "--tables", tables, *common]) == 0
    assert main(["relabel", frag, seg, "--tables", tables, "--threshold", "0.5", *common]) == 0
    one = str(tmp_path / "d.zarr/seg")
    argv = ["segment", "--boundaries", url, "--output", one, "--threshold", "0.5"]
    assert main([*argv, "--block", "16", "--context", "8", "--min-size", "20", *common]) == 0
    np.testing.assert_array_equal(open_volume(seg).read(), open_volume(one).read())


# --- bad input ----------------------------------------------------------------------------------


def _volume(tmp_path, name, data, channels=None):
    shape = data.shape[-3:]
    vol = create_volume(
        str(tmp_path / f"b.zarr/{name}"),
        shape,
        data.dtype,
        (1, 1, 1),
        chunks=shape,
        channels=channels,
    )
    vol.write(vol.roi, data)
    return vol.url


def test_out_of_range_and_wrong_dtype_are_refused_early(tmp_path, client, capsys):
    bad = _volume(tmp_path, "bad", np.full((8, 8, 8), 2.0, np.float32))
    with pytest.raises(InputError, match=r"values must lie in \[0, 1\].*\[2, 2\]"):
        run_fragments(bad, str(tmp_path / "f.zarr/a"), client=client, progress=False)
    nan = np.zeros((8, 8, 8), np.float32)
    nan[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        run_fragments(_volume(tmp_path, "nan", nan), str(tmp_path / "f.zarr/b"), client=client)
    labels = _volume(tmp_path, "labels", np.ones((8, 8, 8), np.uint64))
    with pytest.raises(InputError, match="uint64"):
        run_fragments(labels, str(tmp_path / "f.zarr/c"), client=client)
    assert main(["fragments", bad, str(tmp_path / "f.zarr/d"), "--cluster", "threads:1"]) == 2
    assert "values must lie in [0, 1]" in capsys.readouterr().err


def test_uint8_is_scaled_and_affinities_accepted(synthetic, tmp_path, client):
    _, _, bnd, _ = synthetic
    q = np.round(bnd * 255).astype(np.uint8)
    u8 = _volume(tmp_path, "u8", q)
    f32 = _volume(tmp_path, "f32", (q / 255.0).astype(np.float32))
    a = segment(u8, str(tmp_path / "o.zarr/a"), [0.5], PARAMS, client=client)
    b = segment(f32, str(tmp_path / "o.zarr/b"), [0.5], PARAMS, client=client)
    np.testing.assert_array_equal(
        open_volume(a["segmentations"][0]["segmentation"]).read(),
        open_volume(b["segmentations"][0]["segmentation"]).read(),
    )
    affs = np.stack([1 - bnd] * 3)
    aff_url = _volume(tmp_path, "affs", affs, channels=3)
    c = segment(aff_url, str(tmp_path / "o.zarr/c"), [0.5], PARAMS, client=client)
    assert c["segmentations"][0]["segments"] > 1


def _segment_constant(tmp_path, client, value: float) -> tuple[np.ndarray, dict]:
    url = _volume(tmp_path, f"c{value:g}", np.full((16, 16, 16), value, np.float32))
    r = segment(url, str(tmp_path / f"e.zarr/c{value:g}"), [0.5], block=(8, 8, 8), client=client)
    info = r["segmentations"][0]
    return open_volume(info["segmentation"]).read(), info


def test_all_boundary_gives_empty_segmentation_and_no_boundary_one_segment(tmp_path, client):
    seg, info = _segment_constant(tmp_path, client, 1.0)
    assert not seg.any() and info["fragments"] == 0
    seg, _ = _segment_constant(tmp_path, client, 0.0)
    assert seg.min() > 0 and len(np.unique(seg)) == 1


def test_fragment_id_collisions_are_detected(synthetic, tmp_path, client):
    _, _, _, url = synthetic
    frag = str(tmp_path / "x.zarr/frag")
    run_fragments(url, frag, PARAMS, BLOCK, CONTEXT, client=client, progress=False)
    vol = open_volume(frag, "a")
    data = vol.read()
    # a foreign run wrote block (0, 0, 0)'s ids into the far corner block
    far = tuple(slice(s - 16, s) for s in SHAPE)
    data[far] = data[:16, :16, :16]
    vol.write(vol.roi, data)
    with pytest.raises(BlockFailures, match="collision"):
        run_graph(frag, url, str(tmp_path / "tables"), client=client, progress=False)


def test_empty_volume_is_refused(tmp_path, client):
    import h5py

    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("b", shape=(0, 8, 8), dtype="float32")
    with pytest.raises(InputError, match="empty"):
        run_fragments(f"{path}/b", str(tmp_path / "f.zarr/e"), client=client, progress=False)


def test_2d_mode_blockwise_fragments_stay_in_their_section(synthetic, tmp_path, client):
    _, _, _, url = synthetic
    frag_url = str(tmp_path / "f2.zarr/frag")
    params = FragmentParams(mode="2d", min_size=10)
    run_fragments(url, frag_url, params, BLOCK, CONTEXT, client=client, progress=False)
    frag = open_volume(frag_url).read()
    assert open_volume(frag_url).attrs["petaseg_fragments"]["context"][0] == 0
    z = np.nonzero(frag)[0]
    seed_z = id_coords(frag[frag > 0], SHAPE)[0]
    np.testing.assert_array_equal(z, seed_z)  # every voxel lies in its seed's section
