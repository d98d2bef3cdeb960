import time

import pytest

from cluster import (
    ClusterConnectError,
    ClusterSpec,
    ClusterSpecError,
    open_client,
    parse_cluster_option,
)
from workflows.cli.app import main


def test_unreachable_scheduler_is_a_clear_error():
    t0 = time.time()
    spec = ClusterSpec(kind="scheduler", address="tcp://127.0.0.1:9", timeout=2)
    with pytest.raises(
        ClusterConnectError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"
    ):
        with open_client(spec):
            pass
    assert time.time() - t0 < 30


def test_bad_specs():
    with pytest.raises(ClusterSpecError, match="not understood"):
        parse_cluster_option("slurm-please")
    for bad in ("local:0", "threads:abc", "local:-2"):
        with pytest.raises(ClusterSpecError, match="positive integer"):
            parse_cluster_option(bad)
    with pytest.raises(ClusterSpecError, match="tcp://host:port"):
        ClusterSpec(kind="scheduler", address="127.0.0.1:8786")
    with pytest.raises(ClusterConnectError, match="PETASEG_TLS_CA"):
        with open_client("tls://127.0.0.1:8786"):
            pass


def test_shorthands_name_the_cluster():
    assert parse_cluster_option(None) == ClusterSpec(kind="local")
    assert parse_cluster_option("local:3").workers == 3
    assert parse_cluster_option("threads:2") == ClusterSpec(kind="threads", workers=2)
    assert parse_cluster_option("tls://h:1").address == "tls://h:1"


def test_local_cluster_is_the_default_and_closes_with_its_client():
    with open_client(ClusterSpec(dashboard=False)) as client:
        assert len(client.scheduler_info()["workers"]) >= 1
        cluster = client.cluster
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    assert client.status == "closed"
    assert cluster.status.name == "closed"


def test_cli_reports_unreachable_scheduler(tmp_path, capsys):
    raw = tmp_path / "in.zarr"
    from pipeline.io.volume import create_volume

    create_volume(f"{raw}/raw", (8, 8, 8), "uint8", (1, 1, 1))
    code = main(
        [
            "convert",
            f"{raw}/raw",
            str(tmp_path / "o.zarr/r"),
            "--cluster",
            "tcp://127.0.0.1:9",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert "Traceback" not in err


def _listening(pids: set[int]) -> set[tuple[str, int]]:
    import psutil

    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections("inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    }


@pytest.mark.parametrize("option", ["local:1", "threads:1"])
def test_embedded_clusters_listen_on_loopback_only(option):
    import os

    import psutil

    me = psutil.Process()
    before = _listening({os.getpid()})
    with open_client(option) as client:
        assert client.dashboard_link.startswith("http://127.0.0.1:")
        pids = {os.getpid(), *(c.pid for c in me.children(recursive=True))}
        opened = _listening(pids) - before
        assert opened, "the cluster listens nowhere?"
        assert {ip for ip, _ in opened} == {"127.0.0.1"}, opened


def test_bind_is_an_option_for_one_call(tmp_path, monkeypatch, capsys):
    import os

    from cluster.spec import BIND_ENV

    monkeypatch.delenv(BIND_ENV, raising=False)
    assert parse_cluster_option("local").bind == "127.0.0.1"
    monkeypatch.setenv(BIND_ENV, "10.1.2.3")
    assert parse_cluster_option("local:2").bind == "10.1.2.3"
    monkeypatch.delenv(BIND_ENV)
    assert main(["--bind", "10.1.2.3", "status", str(tmp_path / "none.zarr")]) == 2
    assert BIND_ENV not in os.environ  # the option held for that call only
