"""Zarr volumes and done markers on S3, against a moto server started on 127.0.0.1."""

import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from pipeline.io.volume import create_volume, open_volume
from pipeline.stages.convert import convert


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    port = _free_port()
    moto = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(moto, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("moto server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def bucket(s3_endpoint, monkeypatch):
    import boto3

    for k, v in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    name = f"petaseg-{time.time_ns()}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    return name


def test_zarr_on_s3_roundtrip(bucket):
    url = f"s3://{bucket}/vol.zarr/raw"
    vol = create_volume(
        url, (16, 24, 24), "uint16", (10, 10, 10), chunks=(8, 8, 8), shards=(16, 24, 24)
    )
    data = np.arange(16 * 24 * 24, dtype=np.uint16).reshape(16, 24, 24)
    vol.write(vol.roi, data)
    again = open_volume(url)
    assert again.voxel_size == (10, 10, 10) and again.shards == (16, 24, 24)
    np.testing.assert_array_equal(again.read(), data)


def test_blockwise_convert_into_s3_with_markers_there(bucket, tmp_path, client):
    src = create_volume(
        str(tmp_path / "src.zarr" / "raw"), (16, 32, 32), "uint8", (10, 10, 10), chunks=(8, 16, 16)
    )
    data = np.random.default_rng(0).integers(0, 255, (16, 32, 32), dtype=np.uint8)
    src.write(src.roi, data)
    dst = f"s3://{bucket}/out.zarr/raw"
    report = convert(
        src.url, dst, chunks=(8, 16, 16), block=(8, 16, 16), client=client, progress=False
    )
    assert report.blocks_run == 8 and report.markers.startswith(f"s3://{bucket}/out.zarr.done/")
    np.testing.assert_array_equal(open_volume(dst).read(), data)
    again = convert(
        src.url, dst, chunks=(8, 16, 16), block=(8, 16, 16), client=client, progress=False
    )
    assert again.blocks_run == 0
