import json

import numpy as np
import pytest
import tifffile

from pipeline.errors import InputError
from pipeline.geometry import Roi
from pipeline.io.volume import create_volume, open_volume
from tests.conftest import shared_file


def test_zarr_v3_with_ome_metadata(tmp_path):
    url = str(tmp_path / "out.zarr" / "raw")
    vol = create_volume(
        url,
        (20, 30, 40),
        "uint8",
        (40, 4, 4),
        offset=(80, 8, 0),
        chunks=(10, 16, 16),
        shards=(20, 32, 32),
    )
    data = np.random.default_rng(0).integers(0, 255, (20, 30, 40), dtype=np.uint8)
    vol.write(vol.roi, data)
    again = open_volume(url)
    assert (
        again.shape == (20, 30, 40)
        and again.voxel_size == (40, 4, 4)
        and again.offset == (80, 8, 0)
    )
    assert again.chunks == (10, 16, 16) and again.shards == (20, 32, 32)
    np.testing.assert_array_equal(again.read(), data)
    sub = Roi((120, 16, 8), (80, 20, 12))  # nm
    np.testing.assert_array_equal(again.read(sub), data[1:3, 2:7, 2:5])
    meta = json.loads((tmp_path / "out.zarr" / "raw" / "zarr.json").read_text())
    ms = meta["attributes"]["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [40, 4, 4]
    assert (tmp_path / "out.zarr" / "zarr.json").exists()  # the container is a group too


def test_ome_zarr_reader_opens_our_output(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    url = str(tmp_path / "o.zarr" / "img")
    create_volume(url, (8, 8, 8), "uint16", (10, 10, 10), chunks=(4, 4, 4))
    nodes = list(Reader(parse_url(url))())
    assert any(isinstance(s, Multiscales) for n in nodes for s in n.specs)


def test_padding_outside_volume(tmp_path):
    vol = create_volume(
        str(tmp_path / "p.zarr" / "a"), (4, 4, 4), "uint8", (1, 1, 1), chunks=(4, 4, 4)
    )
    vol.write(vol.roi, np.full((4, 4, 4), 7, np.uint8))
    out = vol.read(Roi((-1, 0, 0), (6, 4, 4)), pad=0)
    assert (
        out.shape == (6, 4, 4) and out[0].sum() == 0 and out[5].sum() == 0 and out[1:5].min() == 7
    )
    assert vol.read(Roi((-1, 0, 0), (6, 4, 4)), pad="edge").min() == 7
    with pytest.raises(InputError, match="outside the volume"):
        vol.read(Roi((-1, 0, 0), (6, 4, 4)))


def test_multichannel_zarr(tmp_path):
    vol = create_volume(
        str(tmp_path / "c.zarr" / "aff"),
        (4, 6, 8),
        "float32",
        (1, 1, 1),
        channels=3,
        chunks=(4, 6, 8),
    )
    data = np.random.default_rng(1).random((3, 4, 6, 8), dtype=np.float32)
    vol.write(vol.roi, data)
    assert open_volume(vol.url).channels == 3
    np.testing.assert_array_equal(open_volume(vol.url).read(), data)


def test_precomputed_roundtrip_with_offset(tmp_path):
    url = f"precomputed://file://{tmp_path}/pc"
    vol = create_volume(
        url, (16, 32, 24), "uint64", (40, 8, 8), offset=(400, 80, 0), chunks=(8, 16, 8)
    )
    data = np.random.default_rng(2).integers(0, 1 << 40, (16, 32, 24), dtype=np.uint64)
    vol.write(vol.roi, data)
    again = open_volume(url)
    assert (again.shape, again.voxel_size, again.offset) == ((16, 32, 24), (40, 8, 8), (400, 80, 0))
    np.testing.assert_array_equal(again.read(), data)


def test_hdf5_and_tiff_import(tmp_path):
    stack = np.random.default_rng(3).integers(0, 255, (5, 12, 10), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "s.tif", stack)
    vol = open_volume(str(tmp_path / "s.tif"))
    assert vol.shape == (5, 12, 10)
    np.testing.assert_array_equal(vol.read(Roi((1, 2, 3), (2, 4, 5))), stack[1:3, 2:6, 3:8])
    folder = tmp_path / "sections"
    folder.mkdir()
    for z in range(5):
        tifffile.imwrite(folder / f"{z:03d}.tif", stack[z])
    np.testing.assert_array_equal(open_volume(str(folder) + "/").read(), stack)
    import h5py

    with h5py.File(tmp_path / "f.h5", "w") as f:
        ds = f.create_dataset("volumes/raw", data=stack)
        ds.attrs["resolution"] = (40, 4, 4)
    h5 = open_volume(f"{tmp_path}/f.h5/volumes/raw")
    assert h5.voxel_size == (40, 4, 4)
    np.testing.assert_array_equal(h5.read(), stack)


def test_real_hdf5_attributes():
    path = shared_file("fib_medulla_flyem/fib_medulla_train.h5")
    vol = open_volume(f"{path}/volumes/labels/neuron_ids")
    assert (
        vol.shape == (160, 250, 250) and vol.voxel_size == (10, 10, 10) and vol.dtype == np.uint64
    )


@pytest.mark.parametrize(
    "url_suffix, match",
    [
        ("missing.zarr/raw", "no Zarr volume"),
        ("missing.h5/volumes/raw", "does not exist"),
        ("gs2://bucket/x", "unknown URL scheme"),
        ("nothing.tif", "no such TIFF"),
    ],
)
def test_bad_urls_name_the_input(tmp_path, url_suffix, match):
    url = url_suffix if "://" in url_suffix else str(tmp_path / url_suffix)
    with pytest.raises(InputError, match=match) as e:
        open_volume(url)
    assert url_suffix.split("/")[0] in str(e.value)


def test_group_without_array_and_wrong_ndim(tmp_path):
    import zarr

    root = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    root.create_array("raw", shape=(4, 4), dtype="uint8")
    root.create_array("vol", shape=(4, 4, 4), dtype="uint8")
    with pytest.raises(InputError, match="name one of its arrays"):
        open_volume(str(tmp_path / "g.zarr"))
    with pytest.raises(InputError, match="2 dimensions"):
        open_volume(str(tmp_path / "g.zarr" / "raw"))
    assert open_volume(str(tmp_path / "g.zarr" / "vol")).shape == (4, 4, 4)
    with pytest.raises(InputError, match="no dataset 'volumes/nope'"):
        open_volume(str(shared_file("gala_fib_example/gala_fib_train.h5")) + "/volumes/nope")


def test_create_refuses_bad_geometry(tmp_path):
    with pytest.raises(InputError, match="unsupported dtype"):
        create_volume(str(tmp_path / "a.zarr/x"), (4, 4, 4), "complex64", (1, 1, 1))
    with pytest.raises(InputError, match="shards"):
        create_volume(
            str(tmp_path / "a.zarr/x"),
            (4, 4, 4),
            "uint8",
            (1, 1, 1),
            chunks=(4, 4, 4),
            shards=(6, 6, 6),
        )
    url = str(tmp_path / "a.zarr/y")
    create_volume(url, (4, 4, 4), "uint8", (10, 10, 10), chunks=(4, 4, 4))
    with pytest.raises(InputError, match="already exists"):
        create_volume(url, (4, 4, 4), "uint8", (10, 10, 10))
    with pytest.raises(InputError, match="exists with shape/dtype/voxel size"):
        create_volume(url, (4, 4, 4), "uint8", (8, 8, 8), exist_ok=True)  # voxel-size mismatch
    vol = open_volume(url)
    with pytest.raises(InputError, match="read-only"):
        vol.write(vol.roi, np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(InputError, match="not aligned to the voxel size"):
        vol.read(Roi((5, 0, 0), (10, 10, 10)))
