"""The whole workflow on a real multi-process TLS cluster (a scheduler and two worker processes,
one advertising GPU=1), with a worker killed mid-run: the segmentation equals a LocalCluster run."""

import threading
import time
from pathlib import Path

import numpy as np

from cluster import make_tls_files, open_client
from cluster.processes import ProcessCluster
from pipeline.io.volume import open_volume
from workflows.config import load_config
from workflows.run import run_workflow
from workflows.schema import Workflow


def workflow(out: Path, model: str, cluster: dict) -> Workflow:
    """The whole pipeline (correct and export included) on a small synthetic volume."""
    return load_config(
        Workflow,
        None,
        data={
            "name": "cluster-test",
            "input": {"synthetic": {"shape": [32, 64, 64], "seed": 3}},
            "output": str(out),
            "model": model,
            "stages": {
                "predict": {
                    "block": [16, 64, 64],
                    "patch": [16, 64, 64],
                    "chunks": [16, 32, 32],
                    "overlap": 0.25,
                    "dtype": "uint8",
                },
                "fragments": {"block": [16, 32, 32], "context": [4, 8, 8], "min_size": 20},
                "segment": {"thresholds": [0.5]},
            },
            "cluster": cluster,
        },
    )


def test_workflow_on_tls_cluster_with_a_killed_worker_equals_local(tmp_path):
    model = "fib-boundary-v1"  # the shipped model: real membranes, a real segmentation
    tls = make_tls_files(tmp_path / "tls")
    with ProcessCluster(tmp_path, tls) as pc:
        pc.add_worker("cpu")
        pc.add_worker("gpu", resources="GPU=1")
        cpu_worker = pc.workers[0]
        wf = workflow(
            tmp_path / "remote.zarr",
            model,
            {"kind": "scheduler", "address": pc.address, "tls": tls},
        )
        with open_client(wf.cluster.spec()) as client:
            deadline = time.time() + 60
            while len(client.scheduler_info()["workers"]) < 2 and time.time() < deadline:
                time.sleep(0.2)
            markers = Path(str(tmp_path / "remote.zarr") + ".done") / "fragments"

            def kill_when_fragments_start():
                while not list(markers.glob("fragments-*/groups/*/*")):
                    time.sleep(0.01)
                pc.kill(cpu_worker)

            killer = threading.Thread(target=kill_when_fragments_start, daemon=True)
            killer.start()
            remote = run_workflow(wf, client, progress=False)
            killer.join(timeout=30)
        assert cpu_worker.poll() is not None, "the worker was not killed mid-run"
    local_wf = workflow(tmp_path / "local.zarr", model, {"kind": "local", "workers": 2})
    with open_client(local_wf.cluster.spec()) as local_client:
        local = run_workflow(local_wf, local_client, progress=False)
    a = open_volume(remote["outputs"]["segmentations"][0]["segmentation"]).read()
    b = open_volume(local["outputs"]["segmentations"][0]["segmentation"]).read()
    assert len(np.unique(a)) > 5
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(  # corrected by the same logged edits
        open_volume(remote["outputs"]["final_segmentation"]).read(),
        open_volume(local["outputs"]["final_segmentation"]).read(),
    )
    np.testing.assert_array_equal(
        open_volume(str(tmp_path / "remote.zarr/boundaries")).read(),
        open_volume(str(tmp_path / "local.zarr/boundaries")).read(),
    )
    assert remote["metrics"] and remote["metrics"][0]["vi_sum"] == local["metrics"][0]["vi_sum"]
