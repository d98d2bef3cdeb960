"""The pyramid stage: scale levels s1, s2, ... built blockwise equal the whole-volume reduction of
the level below; the metadata validates against the official NGFF 0.5 schemas (kept offline in
tests/pipeline/io/ngff_0_5) and the ome-zarr reader and TensorStore open the result."""

from __future__ import annotations

import numpy as np
import pytest
import tensorstore as ts

from pipeline.errors import InputError
from pipeline.io.volume import create_volume, open_volume
from pipeline.io.zarr_v3 import open_level
from pipeline.scales import downsample_mean, downsample_mode
from pipeline.stages.pyramid import run_pyramid
from tests.support.labels import voronoi
from tests.support.ngff import group_attrs, ngff_validator

SHAPE = (24, 70, 70)  # not a multiple of the chunks or of the factors


@pytest.fixture(scope="module")
def labels(tmp_path_factory, client):
    d = tmp_path_factory.mktemp("pyr")
    lab, _ = voronoi(SHAPE, 20, seed=5)
    vol = create_volume(
        str(d / "o.zarr/seg"),
        SHAPE,
        np.uint64,
        (8, 4, 4),
        (16, 8, 8),
        chunks=(8, 16, 16),
        labels=True,
    )
    vol.write(vol.roi, lab.astype(np.uint64))
    with pytest.MonkeyPatch.context() as mp:  # several blocks per level
        mp.setattr("pipeline.stages.pyramid.LEVEL_BLOCK", 16)
        reports = run_pyramid(vol.url, client=client, progress=False)
    return vol.url, reports


def test_label_levels_equal_whole_volume_mode(labels):
    url, reports = labels
    assert len(reports) >= 2 and all(r.blocks_run == r.blocks_total for r in reports)
    assert reports[0].blocks_total > 1
    below = open_level(url, 0)[...]
    for level in range(1, len(reports) + 1):
        have = open_level(url, level)[...]
        factor = (1, 2, 2) if level == 1 else (2, 2, 2)  # z is 2x coarser at level 0
        np.testing.assert_array_equal(have, downsample_mode(below, factor))
        below = have


def test_metadata_is_valid_ngff_0_5_image_and_label(labels):
    url, reports = labels
    attrs = group_attrs(url)
    for schema in ("image.schema", "label.schema"):
        errors = list(ngff_validator(schema).iter_errors(attrs))
        assert not errors, errors[0].message
    datasets = attrs["ome"]["multiscales"][0]["datasets"]
    assert [d["path"] for d in datasets] == [f"s{i}" for i in range(len(reports) + 1)]
    s1 = {t["type"]: t for t in datasets[1]["coordinateTransformations"]}
    assert s1["scale"]["scale"] == [8.0, 8.0, 8.0]
    assert s1["translation"]["translation"] == [16.0, 10.0, 10.0]  # the centre of a 1x2x2 cell
    # a made-up version fails: the validator is not vacuous
    bad = {**attrs, "ome": {**attrs["ome"], "version": "0.4"}}
    assert list(ngff_validator("image.schema").iter_errors(bad))


def test_ome_zarr_reader_and_tensorstore_open_the_levels(labels):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    url, reports = labels
    node = next(iter(Reader(parse_url(url))()))
    assert node.load(Multiscales) is not None and node.load(Label) is not None
    assert len(node.data) == len(reports) + 1
    np.testing.assert_array_equal(np.asarray(node.data[1]), open_level(url, 1)[...])
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{url}/s2"}}
    np.testing.assert_array_equal(ts.open(spec).result().read().result(), open_level(url, 2)[...])
    assert open_volume(url).read().shape == SHAPE  # the volume still opens at level 0


def test_rerun_skips_every_block(labels, client, monkeypatch):
    url, _ = labels
    monkeypatch.setattr("pipeline.stages.pyramid.LEVEL_BLOCK", 16)  # the same block grid
    assert all(r.blocks_run == 0 for r in run_pyramid(url, client=client, progress=False))


def test_image_with_channels_by_mean_and_sharded_at_scale(tmp_path, client, monkeypatch):
    monkeypatch.setattr("pipeline.io.volume.SHARD_ABOVE", 1)
    monkeypatch.setattr("pipeline.stages.pyramid.LEVEL_BLOCK", 16)
    rng = np.random.default_rng(0)
    data = rng.random((2, 40, 72, 72), dtype=np.float32)
    vol = create_volume(
        str(tmp_path / "i.zarr/bnd"),
        (40, 72, 72),
        "float32",
        (4, 4, 4),
        chunks=(8, 8, 8),
        channels=2,
    )
    vol.write(vol.roi, data)
    reports = run_pyramid(vol.url, levels=3, client=client, progress=False)
    assert len(reports) == 2
    s1 = open_level(vol.url, 1)
    assert s1.shards == (2, 16, 16, 16)  # one shard per block of the level
    want = np.stack([downsample_mean(c, (2, 2, 2)) for c in data])
    np.testing.assert_allclose(s1[...], want, rtol=1e-6)
    attrs = group_attrs(vol.url)
    assert not list(ngff_validator("image.schema").iter_errors(attrs))
    assert "image-label" not in attrs["ome"]


def test_bare_array_is_refused(tmp_path):
    import zarr

    zarr.create_array(str(tmp_path / "bare.zarr"), shape=(8, 8, 8), chunks=(8, 8, 8), dtype="u1")
    with pytest.raises(InputError, match="scale levels are written beside s0"):
        run_pyramid(str(tmp_path / "bare.zarr"), progress=False)
