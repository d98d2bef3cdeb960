"""Workflows on a real one-node SLURM cluster (munged, slurmctld and slurmd started here, see
``tests.support.slurm``) through dask-jobqueue: the jobs' workers run a workflow; a worker job
cancelled with scancel mid-run is replaced by the adaptive cluster and the segmentation equals a
LocalCluster run; ``petaseg submit --detach`` to the SLURM cluster's scheduler is followed to
completion with ``petaseg status``."""

import json
import sys
import threading
import time
from pathlib import Path

import dask
import numpy as np
import pytest
import yaml

from cluster import open_client, slurm_job_script
from pipeline.io.volume import open_volume
from tests.conftest import REPO
from tests.support.slurm import LocalSlurm, SlurmUnavailable, job_id, unavailable
from workflows.cli import main
from workflows.cluster_spec import ClusterSection
from workflows.config import apply_overrides, load_config
from workflows.run import run_workflow
from workflows.schema import Workflow
from workflows.steps import plan_of

DEMO = REPO / "workflows" / "examples" / "demo.yaml"
# the demo, small: 2 prediction blocks, 4 fragment blocks; no correction, no export
SMALL = [
    "input.synthetic.shape=[32,64,64]",
    "stages.predict.block=[16,64,64]",
    "stages.predict.patch=[16,64,64]",
    "stages.fragments.block=[16,32,32]",
    "stages.fragments.context=[4,8,8]",
    "stages.segment.thresholds=[0.5]",
    "stages.correct.enabled=false",
    "stages.export.enabled=false",
]


def workflow_data(out: Path, cluster: dict) -> dict:
    """The shipped demo workflow made small, writing ``out`` on ``cluster``."""
    data = apply_overrides(yaml.safe_load(DEMO.read_text()), [*SMALL, f"output={out}"])
    return {**data, "cluster": cluster}


def slurm_section(folder: Path, minimum_jobs: int = 0) -> dict:
    """CPU jobs of one core each, up to two (the node has two); every server on 127.0.0.1."""
    return {
        "kind": "slurm",
        "slurm": {
            "cores": 1,
            "memory": "3GB",
            "gpus": 0,
            "walltime": "00:30:00",
            "minimum_jobs": minimum_jobs,
            "maximum_jobs": 2,
            "python": sys.executable,
            "env": ["export OMP_NUM_THREADS=1"],
            "local_directory": str(folder / "workers"),
            "log_directory": str(folder / "jobs"),
            "interface": "lo",
            "dashboard_address": "127.0.0.1:0",
            "worker_options": ["--dashboard-address", "127.0.0.1:0"],
        },
    }


def test_the_slurm_options_of_a_workflow_reach_the_job_script(tmp_path):
    section = ClusterSection.model_validate(slurm_section(tmp_path))
    script = slurm_job_script(**section.spec().slurm)
    lines = script.splitlines()
    assert f"#SBATCH -o {tmp_path}/jobs/dask-worker-%J.out" in lines
    assert "export OMP_NUM_THREADS=1" in lines and "--gres" not in script
    worker = lines[-1]
    assert worker.startswith(f"{sys.executable} -m distributed.cli.dask_worker tcp://127.0.0.1:")
    for option in ("--interface lo", "--dashboard-address 127.0.0.1:0", f"{tmp_path}/workers"):
        assert option in worker
    assert "--resources" not in worker and "--nthreads 1" in worker


def segmentation_of(output: Path) -> np.ndarray:
    return open_volume(f"{output}/segmentation").read()


def registered_jobs(log_directory: Path, scheduler: str) -> list[str]:
    """The job output files whose worker registered with ``scheduler``."""
    return sorted(
        err.name
        for err in log_directory.glob("*.err")
        if f"Registered to:      {scheduler}" in err.read_text(errors="replace")
    )


def wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """The SLURM cluster, with SLURM_CONF set for this process and the jobs it submits."""
    try:
        with LocalSlurm(tmp_path_factory.mktemp("slurm")) as cluster:
            with pytest.MonkeyPatch.context() as patch:
                for name, value in cluster.env.items():
                    patch.setenv(name, value)
                yield cluster
    except SlurmUnavailable as e:
        unavailable(f"no one-node SLURM cluster here: {e}")


@pytest.fixture(scope="module")
def local_segmentation(tmp_path_factory) -> np.ndarray:
    """The same workflow on a LocalCluster of two worker processes."""
    out = tmp_path_factory.mktemp("local") / "local.zarr"
    wf = load_config(Workflow, None, data=workflow_data(out, {"kind": "local", "workers": 2}))
    with open_client(wf.cluster.spec()) as client:
        run_workflow(wf, client, progress=False)
    return segmentation_of(out)


def test_workflow_runs_on_slurm_jobs(slurm, tmp_path, local_segmentation):
    out = tmp_path / "slurm.zarr"
    wf = load_config(Workflow, None, data=workflow_data(out, slurm_section(tmp_path)))
    with open_client(wf.cluster.spec()) as client:
        scheduler = client.scheduler.address
        assert scheduler.startswith("tcp://127.0.0.1:")
        result = run_workflow(wf, client, progress=False)
    assert registered_jobs(tmp_path / "jobs", scheduler), "no job's worker joined the scheduler"
    assert result["metrics"][0]["vi_sum"] >= 0
    assert len(np.unique(local_segmentation)) > 5
    np.testing.assert_array_equal(segmentation_of(out), local_segmentation)


class CancelWhenFragmentsStart(threading.Thread):
    """Cancels one running worker job (scancel) once the fragments stage has written a marker."""

    def __init__(self, slurm: LocalSlurm, output: Path):
        super().__init__(daemon=True)
        self.slurm = slurm
        self.markers = Path(f"{output}.done") / "fragments"
        self.records = Path(f"{output}.done") / "workflow"
        self.jobs_before: set[str] = set()
        self.finished_before: set[str] = set()  # the steps finished when the job was cancelled
        self.cancelled: str | None = None

    def run(self) -> None:
        while not list(self.markers.glob("fragments-*/groups/*/*")):
            time.sleep(0.01)
        self.finished_before = {record.stem for record in self.records.glob("*.json")}
        jobs = self.slurm.jobs()
        self.jobs_before = set(jobs)
        self.cancelled = min(j for j, state in jobs.items() if state == "RUNNING")
        self.slurm.command("scancel", self.cancelled)


def worker_jobs(client) -> set[str]:
    try:
        return set(client.run(job_id).values())
    except Exception:  # a worker leaving while asked
        return set()


def test_a_cancelled_worker_job_is_replaced_and_the_result_equals_local(
    slurm, tmp_path, local_segmentation
):
    out = tmp_path / "slurm.zarr"
    wf = load_config(Workflow, None, data=workflow_data(out, slurm_section(tmp_path, 2)))
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "1s"}):
        with open_client(wf.cluster.spec()) as client:
            wait_for(lambda: len(worker_jobs(client)) == 2, "two workers")
            canceller = CancelWhenFragmentsStart(slurm, out)
            canceller.start()
            run_workflow(wf, client, progress=False)
            canceller.join(timeout=30)
            assert canceller.cancelled, "no job was cancelled"
            assert "fragments" not in canceller.finished_before, "cancelled after fragments"
            assert canceller.cancelled not in slurm.jobs()

            def replaced() -> bool:
                jobs = worker_jobs(client)
                return len(jobs) == 2 and bool(jobs - canceller.jobs_before)

            wait_for(replaced, f"a worker job in place of job {canceller.cancelled}")
    np.testing.assert_array_equal(segmentation_of(out), local_segmentation)


def test_submit_detached_to_the_slurm_scheduler_followed_by_status(
    slurm, tmp_path, capsys, local_segmentation
):
    out = tmp_path / "submitted.zarr"
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(workflow_data(out, slurm_section(tmp_path))))
    wf = load_config(Workflow, path)
    steps = {step.name for step in plan_of(wf)}
    with open_client(wf.cluster.spec()) as client:
        scheduler = client.scheduler.address
        assert main(["submit", str(path), "--scheduler", scheduler, "--detach"]) == 0
        assert "follow it with: petaseg status" in capsys.readouterr().out

        def finished() -> bool:
            assert main(["status", str(out), "--json"]) in (0, 2)
            status = json.loads(capsys.readouterr().out or "{}")
            return steps <= set(status.get("stages", {}))

        wait_for(finished, "petaseg status showing every step finished")
    assert main(["status", str(out)]) == 0
    text = capsys.readouterr().out
    assert "stage relabel" in text and "complete" in text and "%" not in text
    assert registered_jobs(tmp_path / "jobs", scheduler)
    np.testing.assert_array_equal(segmentation_of(out), local_segmentation)
