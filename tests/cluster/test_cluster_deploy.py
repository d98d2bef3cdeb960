"""Deployment specs (no cluster needed) and a real multi-process TLS cluster on 127.0.0.1."""

import time

import numpy as np
import pytest

from cluster import (
    ClusterConnectError,
    ClusterSpec,
    TlsFiles,
    connect,
    daskcluster_manifest,
    make_tls_files,
    slurm_job_script,
)
from cluster.processes import ProcessCluster
from pipeline.io.volume import open_volume
from pipeline.runner.blockwise import run_blockwise
from tests.support.runner_stages import WritePattern, make_output, make_task, pattern


def test_slurm_job_script_asks_for_a_gpu_and_advertises_it():
    script = slurm_job_script(
        queue="gpu", account="lab", cores=8, memory="64GB", gpus=1, walltime="02:00:00"
    )
    lines = script.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "#SBATCH -p gpu" in lines and "#SBATCH -A lab" in lines
    assert "#SBATCH --gres=gpu:1" in lines and "#SBATCH -t 02:00:00" in lines
    assert "--resources GPU=1" in script and "dask_worker" in script


POD_SPEC = {  # the part of k8s PodSpec the operator relies on (the full schema is not bundled)
    "type": "object",
    "required": ["containers"],
    "properties": {
        "containers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "image"],
                "properties": {
                    "name": {"type": "string"},
                    "image": {"type": "string"},
                    "args": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}


def _operator_schema() -> dict:
    """The DaskCluster schema shipped with dask-kubernetes, its references resolved."""
    from pathlib import Path

    import dask_kubernetes.operator
    import yaml

    folder = Path(dask_kubernetes.operator.__file__).parent / "customresources"
    defs = yaml.safe_load((folder / "templates.yaml").read_text())["definitions"]

    def resolve(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref:
                name = ref.rsplit("/", 1)[-1]
                if name.startswith("io.k8s.api.core.v1.PodSpec"):
                    return POD_SPEC
                if name.startswith("io.k8s.api.core.v1.ServiceSpec"):
                    return {"type": "object", "required": ["ports"]}
                return resolve(defs[name])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(defs["dask.k8s.api.v1.DaskCluster"])


def test_kubernetes_manifest_is_a_valid_daskcluster():
    import jsonschema
    import yaml

    m = daskcluster_manifest(name="seg", n_workers=3, gpus_per_worker=1, tls_secret="dask-tls")
    m = yaml.safe_load(yaml.safe_dump(m))  # round-trips as plain YAML
    assert (m["apiVersion"], m["kind"]) == ("kubernetes.dask.org/v1", "DaskCluster")
    jsonschema.validate(m, _operator_schema())
    broken = yaml.safe_load(yaml.safe_dump(m))
    del broken["spec"]["scheduler"]["service"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _operator_schema())
    worker = m["spec"]["worker"]["spec"]["containers"][0]
    assert m["spec"]["worker"]["replicas"] == 3
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["args"][-2:] == ["--resources", "GPU=1"]
    assert "$(DASK_WORKER_NAME)" in worker["args"]
    sched = m["spec"]["scheduler"]
    assert {p["port"] for p in sched["service"]["ports"]} == {8786, 8787}
    assert sched["service"]["selector"]["dask.org/cluster-name"] == "seg"
    assert "--tls-ca-file" in sched["spec"]["containers"][0]["args"]
    assert m["spec"]["worker"]["spec"]["volumes"][0]["secret"]["secretName"] == "dask-tls"


def test_tls_cluster_runs_blocks_survives_a_killed_worker_and_refuses_wrong_certs(tmp_path):
    tls = make_tls_files(tmp_path / "tls")
    with ProcessCluster(tmp_path, tls) as pc:
        assert pc.address.startswith("tls://127.0.0.1:")
        pc.add_worker("cpu")
        gpu = pc.add_worker("gpu", resources="GPU=1")
        client = connect(ClusterSpec(kind="scheduler", address=pc.address, tls=TlsFiles(**tls)))
        try:
            deadline = time.time() + 60
            while len(client.scheduler_info()["workers"]) < 2 and time.time() < deadline:
                time.sleep(0.2)
            infos = client.scheduler_info()["workers"].values()
            assert sorted(w.get("resources", {}).get("GPU", 0) for w in infos) == [0, 1]
            url = str(tmp_path / "o.zarr" / "p")
            make_output(url)
            logs = tmp_path / "logs"
            logs.mkdir()
            import threading

            def kill_gpu_worker():
                while len(list(logs.iterdir())) < 8:
                    time.sleep(0.02)
                pc.kill(gpu)

            threading.Thread(target=kill_gpu_worker, daemon=True).start()
            report = run_blockwise(
                make_task(url, WritePattern(url, str(logs), delay=0.05)), client, progress=False
            )
            assert report.blocks_run == 64
            assert gpu.poll() is not None  # the worker really died mid-run
            np.testing.assert_array_equal(open_volume(url).read(), pattern(open_volume(url).roi))
        finally:
            client.close()
        other = make_tls_files(tmp_path / "other-ca")
        with pytest.raises(ClusterConnectError, match="TLS handshake fails: .*CERTIFICATE"):
            connect(
                ClusterSpec(kind="scheduler", address=pc.address, tls=TlsFiles(**other), timeout=3)
            )
        plain = "tcp://" + pc.address.split("://", 1)[1]
        with pytest.raises(ClusterConnectError, match=f"{plain} speaks TLS: connect to tls://"):
            connect(ClusterSpec(kind="scheduler", address=plain, timeout=3))
    assert oct((tmp_path / "tls" / "key.pem").stat().st_mode & 0o777) == "0o600"
