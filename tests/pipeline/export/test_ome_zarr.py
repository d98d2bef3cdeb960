"""OME-Zarr export: the image at the root of OUT and the segmentation as its label image
OUT/labels/NAME validate against the official NGFF 0.5 schemas; ome-zarr-py's reader finds the
image and, through the labels group, the label image with its levels; TensorStore reads the
labels; bad input is refused before anything is written; and ``petaseg export --format
ome-zarr`` runs it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorstore as ts
import zarr

from pipeline.errors import InputError
from pipeline.export import export_ome_zarr
from pipeline.io.volume import create_volume, open_volume
from pipeline.scales import downsample_mean, downsample_mode
from tests.support.labels import voronoi
from tests.support.ngff import group_attrs, ngff_validator
from workflows.cli.app import main

SHAPE = (12, 40, 36)  # not a multiple of the chunks
VOXEL, OFFSET, CHUNKS = (8, 4, 4), (16, 8, 8), (4, 16, 16)


def write(url: str, data: np.ndarray, voxel=VOXEL, offset=OFFSET) -> str:
    vol = create_volume(url, data.shape, data.dtype, voxel, offset, chunks=CHUNKS)
    vol.write(vol.roi, data)
    return url


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, str, str]:
    d = tmp_path_factory.mktemp("ome")
    raw = np.random.default_rng(3).integers(0, 255, SHAPE, dtype=np.uint8)
    seg, _ = voronoi(SHAPE, 12, seed=4)
    return d, write(str(d / "in.zarr/raw"), raw), write(str(d / "in.zarr/seg"), seg.astype("u8"))


@pytest.fixture(scope="module")
def exported(inputs, client):
    d, raw, seg = inputs
    out = str(d / "out.ome.zarr")
    with pytest.MonkeyPatch.context() as mp:  # several blocks a stage, one shard a block
        mp.setattr("pipeline.io.volume.SHARD_ABOVE", 1)
        mp.setattr("pipeline.stages.pyramid.LEVEL_BLOCK", 16)
        mp.setattr("pipeline.export.ome_zarr.default_block_shape", lambda g, _: (8, 32, 32))
        result = export_ome_zarr(out, raw, {"segmentation": seg}, client, False, chunks=CHUNKS)
    return out, result


def test_every_stage_ran_blockwise_into_shards(exported):
    out, result = exported
    assert all(r.blocks_run == r.blocks_total > 1 for r in result.reports[:2]), result.reports
    assert zarr.open_array(f"{out}/labels/segmentation/s0").shards == (8, 32, 32)


def test_image_labels_group_and_label_image_are_valid_ngff_0_5(exported):
    out, result = exported
    image = group_attrs(out)
    assert not list(ngff_validator("image.schema").iter_errors(image))
    assert "image-label" not in image["ome"]
    assert group_attrs(f"{out}/labels") == {"ome": {"version": "0.5", "labels": ["segmentation"]}}
    label = group_attrs(f"{out}/labels/segmentation")
    for schema in ("image.schema", "label.schema"):
        errors = list(ngff_validator(schema).iter_errors(label))
        assert not errors, errors[0].message
    assert label["ome"]["image-label"]["source"] == {"image": "../../"}
    # one coordinate system: the same levels, scales and translations as the image
    ms_image, ms_label = image["ome"]["multiscales"][0], label["ome"]["multiscales"][0]
    assert ms_label["datasets"] == ms_image["datasets"] and ms_label["axes"] == ms_image["axes"]
    assert result.levels == len(ms_image["datasets"]) >= 2
    assert result.labels == {"segmentation": f"{out}/labels/segmentation"}


def test_geometry_and_dtypes_are_kept(exported, inputs):
    out, _ = exported
    _, raw, seg = inputs
    for copy, source in ((out, raw), (f"{out}/labels/segmentation", seg)):
        have, want = open_volume(copy), open_volume(source)
        assert (have.shape, have.voxel_size, have.offset, have.dtype) == (
            want.shape,
            want.voxel_size,
            want.offset,
            want.dtype,
        )
        np.testing.assert_array_equal(have.read(), want.read())


def test_ome_zarr_reader_finds_the_image_and_its_label(exported, inputs):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Labels, Multiscales, Reader

    out, result = exported
    _, raw, seg = inputs
    nodes = {Path(n.zarr.path.rstrip("/")).name: n for n in Reader(parse_url(out))()}
    image, labels, label = nodes["out.ome.zarr"], nodes["labels"], nodes["segmentation"]
    assert image.load(Multiscales) is not None and image.load(Label) is None
    assert labels.load(Labels) is not None
    assert label.load(Label) is not None and label.load(Multiscales) is not None
    assert len(label.data) == len(image.data) == result.levels
    raw_data, seg_data = open_volume(raw).read(), open_volume(seg).read()
    np.testing.assert_array_equal(np.asarray(image.data[0]), raw_data)
    np.testing.assert_array_equal(np.asarray(image.data[1]), downsample_mean(raw_data, (1, 2, 2)))
    np.testing.assert_array_equal(np.asarray(label.data[0]), seg_data)
    assert label.data[0].dtype == np.uint64
    np.testing.assert_array_equal(np.asarray(label.data[1]), downsample_mode(seg_data, (1, 2, 2)))


def test_tensorstore_reads_the_label_image(exported, inputs):
    out, _ = exported
    spec = {
        "driver": "zarr3",
        "kvstore": {"driver": "file", "path": f"{out}/labels/segmentation/s0"},
    }
    have = ts.open(spec).result().read().result()
    np.testing.assert_array_equal(have, open_volume(inputs[2]).read())


def test_a_second_label_is_added_and_finished_blocks_are_skipped(tmp_path, inputs, client):
    _, raw, seg = inputs
    out = str(tmp_path / "two.ome.zarr")
    export_ome_zarr(out, raw, {"segmentation": seg}, client, progress=False)
    again = export_ome_zarr(out, raw, {"segmentation": seg, "cells": seg}, client, progress=False)
    assert group_attrs(f"{out}/labels")["ome"]["labels"] == ["segmentation", "cells"]
    cells = [r for r in again.reports if r.blocks_run]  # only the new label image was written
    assert cells and sum(r.blocks_run for r in again.reports) == sum(r.blocks_total for r in cells)
    np.testing.assert_array_equal(
        open_volume(f"{out}/labels/cells").read(), open_volume(seg).read()
    )


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"shape": (12, 40, 32)}, "has shape (12, 40, 32) voxels but the image"),
        ({"voxel": (8, 8, 8)}, "has voxel size (8, 8, 8) nm but the image"),
        ({"offset": (0, 0, 0)}, "has offset (0, 0, 0) nm but the image"),
        ({"dtype": "float32"}, "holds float32; a label image holds one integer id"),
    ],
)
def test_a_label_that_does_not_match_the_image_is_refused(tmp_path, inputs, change, expected):
    _, raw, _ = inputs
    data = np.ones(change.get("shape", SHAPE), dtype=change.get("dtype", "u8"))
    bad = write(
        str(tmp_path / "bad.zarr/seg"),
        data,
        change.get("voxel", VOXEL),
        change.get("offset", OFFSET),
    )
    with pytest.raises(InputError, match="segmentation .*bad.zarr/seg") as info:
        export_ome_zarr(str(tmp_path / "o.ome.zarr"), raw, {"segmentation": bad}, progress=False)
    assert expected in str(info.value)
    assert not (tmp_path / "o.ome.zarr").exists()


def test_an_output_over_an_input_is_refused(inputs):
    d, raw, seg = inputs
    with pytest.raises(InputError, match="would overwrite that input"):
        export_ome_zarr(str(d / "in.zarr"), raw, {"segmentation": seg}, progress=False)


def test_cli_exports_and_refuses_a_mismatched_segmentation(tmp_path, inputs, capsys):
    _, raw, seg = inputs
    out = str(tmp_path / "cli.ome.zarr")
    argv = ["export", out, "--format", "ome-zarr", "--image", raw, "--cluster", "threads:1"]
    assert main([*argv, "--segmentation", seg, "--label-name", "cells", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["labels"] == {"cells": f"{out}/labels/cells"}
    assert group_attrs(f"{out}/labels")["ome"]["labels"] == ["cells"]
    np.testing.assert_array_equal(
        open_volume(f"{out}/labels/cells").read(), open_volume(seg).read()
    )
    bad = write(str(tmp_path / "bad.zarr/seg"), np.ones((12, 40, 32), "u8"))
    other = str(tmp_path / "other.ome.zarr")
    code = main([*argv[:1], other, *argv[2:], "--segmentation", bad])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert "has shape (12, 40, 32) voxels but the image" in err and err.count("\n") == 1
    assert not Path(other).exists()
