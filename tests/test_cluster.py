import time

import pytest

from cluster import ClusterConnectError, make_client
from pipeline.cli import main


def test_unreachable_scheduler_is_a_clear_error():
    t0 = time.time()
    with pytest.raises(
        ClusterConnectError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"
    ):
        make_client("tcp://127.0.0.1:9", timeout=2)
    assert time.time() - t0 < 30


def test_bad_specs():
    with pytest.raises(ClusterConnectError, match="not understood"):
        make_client("slurm-please")
    with pytest.raises(ClusterConnectError, match="PETASEG_TLS_CA"):
        make_client("tls://127.0.0.1:8786")


def test_local_cluster_is_the_default():
    client = make_client(None, dashboard=False)
    try:
        assert len(client.scheduler_info()["workers"]) >= 1
    finally:
        client.close()
        client.cluster.close()


def test_cli_reports_unreachable_scheduler(tmp_path, capsys):
    code = main(
        [
            "convert",
            "x.h5/volumes/raw",
            str(tmp_path / "o.zarr/r"),
            "--cluster",
            "tcp://127.0.0.1:9",
        ]
    )
    assert code == 2
