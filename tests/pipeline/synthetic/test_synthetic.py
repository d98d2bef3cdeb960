"""Synthetic EM volumes: labels that look like dense neuropil, raw data that looks like EM, and
a faithful round trip through petaseg volumes. Small volumes keep this file to a few seconds."""

from __future__ import annotations

import cc3d
import edt
import numpy as np
import pytest
from skimage.measure import regionprops

from pipeline.errors import InputError
from pipeline.io.volume import open_volume
from pipeline.synthetic.volume import (
    boundary_gt,
    make_neurons,
    make_volume,
    preview_png,
    render_em,
    voxel_size_for,
)

SHAPE = (32, 96, 96)


@pytest.fixture(scope="module")
def vol():
    return make_volume(SHAPE, seed=3)


def test_same_seed_same_volume_other_seed_other_volume(vol):
    again = make_volume(SHAPE, seed=3)
    assert np.array_equal(again.labels, vol.labels)
    assert np.array_equal(again.raw, vol.raw)
    other = make_volume(SHAPE, seed=4)
    assert not np.array_equal(other.labels, vol.labels)
    assert np.mean(other.raw != vol.raw) > 0.5


def test_labels_dense_contiguous_and_connected(vol):
    labels = vol.labels
    assert labels.dtype == np.uint64 and labels.shape == SHAPE
    ids = np.unique(labels)
    assert ids[0] == 1, "no voxel may stay unlabelled (dense ground truth)"
    assert np.array_equal(ids, np.arange(1, ids.size + 1)), "ids are 1..N without gaps"
    assert ids.size > 20
    pieces = cc3d.connected_components(labels, connectivity=6)
    assert pieces.max() == ids.size, "every id is exactly one 6-connected object"


def test_objects_are_elongated(vol):
    ratios = [
        p.axis_major_length / p.axis_minor_length
        for p in regionprops(vol.labels.astype(np.int64))
        if p.area >= 200
    ]
    assert len(ratios) > 10
    # tubes: the longest principal axis well over twice the shortest (FlyEM medulla: about 3.5)
    assert np.mean(ratios) > 2.5


def test_membranes_darker_than_cytoplasm_like_fib_sem(vol):
    raw = vol.raw.astype(np.float64)
    walls = vol.boundaries > 0
    depth = edt.edt(vol.labels, black_border=False)
    wall_mean, inside_mean = raw[walls].mean(), raw[depth >= 4].mean()
    # FlyEM FIB-SEM medulla: 98 on label boundaries, ~140 well inside objects
    assert 80 < wall_mean < 115
    assert 125 < inside_mean < 175
    assert inside_mean - wall_mean > 25
    assert vol.raw.dtype == np.uint8 and 0 < raw.std() < 60


def test_boundary_gt_marks_both_sides_of_each_wall():
    labels = np.ones((3, 4, 5), dtype=np.uint64)
    labels[:, :, 3:] = 2
    b = boundary_gt(labels)
    assert b.dtype == np.float32
    assert np.array_equal(np.flatnonzero(b[1, 1]), [2, 3])
    assert b.sum() == 2 * 3 * 4
    assert boundary_gt(np.ones((4, 4, 4), np.uint64)).sum() == 0


def _extents(labels: np.ndarray) -> tuple[float, float]:
    """Mean z extent and mean xy extent of the objects, in voxels."""
    z, xy = [], []
    for p in regionprops(labels.astype(np.int64)):
        z0, y0, x0, z1, y1, x1 = p.bbox
        z.append(z1 - z0)
        xy.append((y1 - y0 + x1 - x0) / 2)
    return float(np.mean(z)), float(np.mean(xy))


def test_thick_sections_squeeze_objects_in_z():
    iso = _extents(make_neurons((24, 64, 64), seed=1, anisotropy=1.0))
    thick = _extents(make_neurons((24, 64, 64), seed=1, anisotropy=4.0))
    # per voxel, a 4x thicker section holds 4x more neurite length in z
    assert thick[0] / thick[1] < 0.6 * iso[0] / iso[1]


def test_voxel_size_matches_anisotropy():
    assert voxel_size_for(1.0) == (10, 10, 10)
    assert voxel_size_for(4) == (40, 10, 10)
    z, y, x = voxel_size_for(1.25)
    assert y == x and z == 1.25 * y


def test_write_zarr_round_trip(vol, tmp_path):
    urls = vol.write_zarr(tmp_path / "synth.zarr")
    assert set(urls) == {"raw", "labels", "boundaries"}
    assert urls["labels"].endswith("synth.zarr/labels/neurons")
    for name, expected in [
        ("raw", vol.raw),
        ("labels", vol.labels),
        ("boundaries", vol.boundaries),
    ]:
        v = open_volume(urls[name])
        assert v.voxel_size == (10, 10, 10)
        assert v.dtype == expected.dtype
        assert all(c <= s for c, s in zip(v.chunks, (32, 64, 64), strict=True))
        assert np.array_equal(v.read(), expected)


def test_write_zarr_refuses_to_overwrite(vol, tmp_path):
    vol.write_zarr(tmp_path / "a.zarr")
    with pytest.raises(InputError, match="already exists"):
        vol.write_zarr(tmp_path / "a.zarr")
    vol.write_zarr(tmp_path / "a.zarr", exist_ok=True)


def test_anisotropic_volume_renders_and_carries_its_voxel_size(tmp_path):
    v = make_volume((16, 64, 64), seed=2, anisotropy=4.0)
    assert v.voxel_size == (40, 10, 10)
    walls = v.boundaries > 0
    assert v.raw[~walls].mean() - v.raw[walls].mean() > 20
    url = v.write_zarr(tmp_path / "aniso.zarr")["raw"]
    assert open_volume(url).voxel_size == (40, 10, 10)


def test_preview_png_is_written(vol, tmp_path):
    path = preview_png(vol.raw, vol.labels, tmp_path / "preview.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_bad_inputs_are_named():
    with pytest.raises(InputError, match="shape"):
        make_neurons((4, 64))
    with pytest.raises(InputError, match="anisotropy"):
        make_neurons((16, 32, 32), anisotropy=0)
    with pytest.raises(InputError, match="labels"):
        render_em(np.ones((8, 8), np.uint64))


def test_tiny_volume_still_dense():
    labels = make_neurons((8, 8, 8), seed=0)
    assert labels.min() >= 1 and cc3d.connected_components(labels).max() == labels.max()
