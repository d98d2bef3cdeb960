"""The notebook face of a volume, for every format: numpy-style slicing in voxels equals numpy on
the same data and ``read`` of the same box, channels lead, bad steps and indices are named,
``to_dask`` reads lazily by chunk and travels as the URL, and the repr is one line."""

from __future__ import annotations

import os
import pickle

import h5py
import numpy as np
import pytest
import tifffile

from pipeline.errors import InputError
from pipeline.geometry import Roi
from pipeline.io import open_volume
from pipeline.io.indexing import VoxelIndexError
from pipeline.io.volume import create_volume

SHAPE = (6, 20, 18)
DATA = np.random.default_rng(7).integers(0, 255, SHAPE, dtype=np.uint8)
CHANNELS = np.random.default_rng(8).random((2, *SHAPE), dtype=np.float32)


def _written(url: str, data: np.ndarray, **geometry) -> str:
    channels = data.shape[0] if data.ndim == 4 else None
    vol = create_volume(url, data.shape[-3:], data.dtype, channels=channels, **geometry)
    vol.write(vol.roi, data)
    return url


def _zarr(tmp_path, data):
    return _written(
        str(tmp_path / "v.zarr" / "raw"),
        data,
        voxel_size=(40, 4, 4),
        offset=(80, 8, 0),
        chunks=(2, 8, 6),
        shards=(4, 16, 12),
    )


def _precomputed(tmp_path, data):
    url = f"precomputed://file://{tmp_path}/pc"
    return _written(url, data, voxel_size=(40, 8, 8), offset=(400, 80, 0), chunks=(2, 8, 6))


def _hdf5(tmp_path, data):
    with h5py.File(tmp_path / "f.h5", "w") as f:
        ds = f.create_dataset("volumes/raw", data=data, chunks=(*data.shape[:-3], 3, 10, 9))
        ds.attrs["resolution"] = (40, 4, 4)
        ds.attrs["offset"] = (40, 0, 8)
    return f"{tmp_path}/f.h5/volumes/raw"


def _tiff(tmp_path, data):
    tifffile.imwrite(tmp_path / "s.tif", data)
    return str(tmp_path / "s.tif")


def _tiff_folder(tmp_path, data):
    folder = tmp_path / "sections"
    folder.mkdir()
    for z, section in enumerate(data):
        tifffile.imwrite(folder / f"{z:03d}.tif", section)
    return str(folder) + "/"


FORMATS = {
    "zarr": _zarr,
    "precomputed": _precomputed,
    "hdf5": _hdf5,
    "tiff": _tiff,
    "tiff-folder": _tiff_folder,
}
CHANNEL_FORMATS = ("zarr", "precomputed", "hdf5")

KEYS = [
    (slice(0, 4), slice(3, 15), slice(None)),
    (slice(None), slice(-5, None), slice(2, -3)),
    (2,),
    (-1, 4),
    (1, slice(2, 9), -2),
    (Ellipsis, 5),
    (slice(2, None), Ellipsis),
    (slice(-100, 100), slice(15, 40), slice(3, 3)),  # clipped as numpy clips; an empty axis
    (slice(4, 2),),
    (np.int64(3), slice(np.int32(1), np.int64(5))),
    (),
]


def _nm_box(vol, key) -> Roi:
    """The ROI in nm of three slices (clipped by Python's own ``slice.indices``)."""
    ranges = [range(*k.indices(n)) for k, n in zip(key, vol.shape, strict=True)]
    box = Roi([r.start for r in ranges], [len(r) for r in ranges])
    return box.to_world(vol.voxel_size).shift(vol.offset)


@pytest.fixture(params=list(FORMATS))
def volume_and_data(request, tmp_path):
    return open_volume(FORMATS[request.param](tmp_path, DATA)), DATA


@pytest.fixture(params=CHANNEL_FORMATS)
def channel_volume(request, tmp_path):
    return open_volume(FORMATS[request.param](tmp_path, CHANNELS))


@pytest.mark.parametrize("key", KEYS, ids=str)
def test_slicing_is_numpy_on_the_volume(volume_and_data, key):
    vol, data = volume_and_data
    got = vol[key]
    assert got.dtype == data.dtype
    np.testing.assert_array_equal(got, data[key])


def test_slicing_equals_read_of_the_same_box(volume_and_data):
    vol, data = volume_and_data
    for key in [(slice(1, 5), slice(3, 15), slice(4, 10)), (slice(None), slice(-6, None))]:
        box = _nm_box(vol, key + (slice(None),) * (3 - len(key)))
        np.testing.assert_array_equal(vol[key], vol.read(box))
    np.testing.assert_array_equal(vol[:], vol.read())
    assert vol.roi == Roi(vol.offset, [s * v for s, v in zip(SHAPE, vol.voxel_size, strict=True)])


def test_a_channel_axis_leads(channel_volume):
    vol = channel_volume
    assert vol.channels == 2 and vol.array_shape == (2, *SHAPE)
    for key in [(1,), (-1, 2, slice(3, 9)), (slice(None), 0, -1), (Ellipsis, 4), (slice(1, 5),)]:
        np.testing.assert_array_equal(vol[key], CHANNELS[key])
    np.testing.assert_array_equal(
        vol[:, 1:4, 2:8, 3:9], vol.read(_nm_box(vol, np.s_[1:4, 2:8, 3:9]))
    )
    with pytest.raises(
        VoxelIndexError, match="index 2 is out of bounds for axis c with 2 channels"
    ):
        vol[2]


@pytest.mark.parametrize("step", [2, -1, 0])
def test_steps_other_than_one_are_refused(volume_and_data, step):
    vol, _ = volume_and_data
    with pytest.raises(InputError, match="on axis y") as refused:
        vol[:, 0:10:step]
    assert vol.url in str(refused.value)
    assert f"slice 0:10:{step} on axis y" in str(refused.value)
    if step:
        assert "only steps of 1" in str(refused.value)


def test_bad_indices_are_named(volume_and_data):
    vol, _ = volume_and_data
    with pytest.raises(
        VoxelIndexError, match=r"index -7 is out of bounds for axis z with 6 voxels"
    ):
        vol[-7]
    with pytest.raises(IndexError, match=r"too many indices: 4 for a volume of 3 axes"):
        vol[0, 0, 0, 0]
    with pytest.raises(InputError, match="single ellipsis"):
        vol[..., 0, ...]
    for bad in ([0, 1], None, True, 1.5, np.array([1, 2])):
        with pytest.raises(InputError, match="index a volume with integers and slices"):
            vol[bad]
    with pytest.raises(InputError, match="slice 0.5:3 on axis z"):
        vol[0.5:3]


def test_to_dask_has_the_chunks_and_equals_the_volume(volume_and_data):
    vol, data = volume_and_data
    lazy = vol.to_dask()
    assert lazy.shape == data.shape and lazy.dtype == data.dtype
    assert lazy.chunksize == tuple(min(c, s) for c, s in zip(vol.chunks, SHAPE, strict=True))
    assert all(sum(sizes) == s for sizes, s in zip(lazy.chunks, SHAPE, strict=True))
    np.testing.assert_array_equal(lazy.compute(), data)
    np.testing.assert_array_equal(lazy[1:4, -7:, 3].compute(), data[1:4, -7:, 3])
    assert lazy.name == vol.to_dask().name  # deterministic: the same volume, the same graph


def test_to_dask_keeps_the_channels_in_each_chunk(channel_volume):
    lazy = channel_volume.to_dask()
    assert lazy.chunks[0] == (2,) and lazy.chunksize[1:] == channel_volume.chunks
    np.testing.assert_array_equal(lazy.compute(), CHANNELS)


def test_to_dask_pickles_as_the_url(volume_and_data):
    vol, data = volume_and_data
    payload = pickle.dumps(vol.to_dask())
    assert data[:2].tobytes() not in payload  # the graph holds no data ...
    assert vol.url.encode() in payload  # ... only the volume's URL
    np.testing.assert_array_equal(pickle.loads(payload).compute(), data)


def test_to_dask_reads_on_worker_processes(tmp_path):
    """HDF5 file handles do not pickle: each worker process reopens the file from the URL."""
    from distributed import Client, LocalCluster

    vol = open_volume(_hdf5(tmp_path, DATA))
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        total = client.compute(vol.to_dask().astype(np.int64).sum()).result()
        pids = set(client.run(os.getpid).values())
    assert total == int(DATA.astype(np.int64).sum())
    assert os.getpid() not in pids


def test_repr_is_one_line_with_the_geometry(volume_and_data):
    vol, _ = volume_and_data
    text = repr(vol)
    assert "\n" not in text and text.startswith(f"<Volume {vol.format} {vol.url!r} ")
    for part in (
        f"shape(z,y,x)={SHAPE}",
        "dtype=uint8",
        f"voxel_size={vol.voxel_size}nm",
        f"chunks={vol.chunks}",
    ):
        assert part in text, text
    assert vol.format in {"zarr", "precomputed", "hdf5", "tiff"}


def test_repr_names_channels_offset_and_shards(tmp_path):
    vol = open_volume(_zarr(tmp_path, CHANNELS))
    assert repr(vol) == (
        f"<Volume zarr {vol.url!r} shape(c,z,y,x)=(2, 6, 20, 18) dtype=float32 "
        "voxel_size=(40, 4, 4)nm offset=(80, 8, 0)nm chunks=(2, 8, 6) shards=(4, 16, 12)>"
    )
