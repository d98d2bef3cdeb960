"""Running a workflow from Python: ``workflows.run_workflow`` from a dict and from a YAML file, on
a client given or on the cluster the workflow names (opened, then closed), validated like
``petaseg run``; and a script without an ``if __name__ == "__main__":`` guard that runs a
workflow on a process cluster finishes (on threads, with a warning) instead of hanging."""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.errors import ConfigError
from pipeline.io import open_volume
from pipeline.synthetic import make_volume
from tests.conftest import REPO


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """A small synthetic boundary map and its ground truth (no prediction needed)."""
    folder = tmp_path_factory.mktemp("inputs")
    return make_volume((16, 48, 48), seed=1).write_zarr(str(folder / "in.zarr"))


def tiny(inputs: dict[str, str], output: Path, kind: str = "threads") -> dict:
    """A workflow from a boundary map: fragments to segmentation and evaluation, nothing else."""
    return {
        "name": "tiny",
        "input": {"boundaries": inputs["boundaries"], "ground_truth": inputs["labels"]},
        "output": str(output),
        "stages": {
            "fragments": {"min_size": 10},
            "segment": {"thresholds": [0.5]},
            "correct": {"enabled": False},
            "export": {"enabled": False},
        },
        "cluster": {"kind": kind, "workers": 2},
    }


def _segments(summary: dict) -> int:
    return summary["outputs"]["segmentations"][0]["segments"]


def test_run_from_a_dict_on_a_client(inputs, tmp_path, client):
    from workflows import run_workflow

    data = tiny(inputs, tmp_path / "run.zarr")
    given = copy.deepcopy(data)
    summary = run_workflow(data, client=client, progress=False, overrides=["name=from-a-dict"])
    assert data == given  # the overrides went into a copy
    assert summary["workflow"] == "from-a-dict"
    assert list(summary["stages"]) == [
        "input",
        "fragments",
        "graph",
        "agglomerate",
        "segment",
        "relabel",
        "evaluate",
    ]
    final = open_volume(summary["outputs"]["final_segmentation"])
    assert len(np.unique(final[:])) == _segments(summary) > 1
    assert summary["metrics"][0]["vi_sum"] >= 0
    again = run_workflow(data, client=client, progress=False)
    assert all(t["skipped"] for t in again["stages"].values())


def test_run_from_a_file_opens_and_closes_its_cluster(inputs, tmp_path, monkeypatch):
    import workflows.api
    from workflows import run_workflow

    clients, real = [], workflows.api.open_client

    @contextlib.contextmanager
    def recording(spec):
        with real(spec) as client:
            clients.append(client)
            yield client

    monkeypatch.setattr(workflows.api, "open_client", recording)
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(tiny(inputs, tmp_path / "run.zarr")))
    summary = run_workflow(path, overrides={"stages.segment.thresholds": [0.6]})
    assert [m["threshold"] for m in summary["metrics"]] == [0.6]
    assert summary["summary_file"] == str(tmp_path / "run.summary.json")
    (client,) = clients  # the workflow's cluster: threads, as its cluster section says ...
    assert client.cluster.processes is False
    assert client.status == "closed" and client.cluster.status.name == "closed"  # ... closed
    summary = run_workflow(str(path), progress=False, overrides=["stages.segment.thresholds=[0.6]"])
    assert all(t["skipped"] for t in summary["stages"].values())


def test_workflows_are_validated_like_the_command_line(inputs, tmp_path):
    from workflows import load_workflow, run_workflow

    data = tiny(inputs, tmp_path / "run.zarr")
    data["stages"]["fragments"]["treshold"] = 0.5
    with pytest.raises(ConfigError, match="stages.fragments.treshold: unknown key"):
        run_workflow(data, progress=False)
    with pytest.raises(ConfigError, match="does not exist; see workflows/examples/"):
        run_workflow(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match="a YAML file, a dict or a Workflow, not int"):
        run_workflow(3)
    wf = load_workflow(tiny(inputs, tmp_path / "run.zarr"), {"cluster.workers": 3})
    assert (wf.cluster.kind, wf.cluster.workers) == ("threads", 3)
    assert load_workflow(wf) is wf
    assert load_workflow(wf, ["name=other"]).name == "other"
    assert not (tmp_path / "run.zarr").exists()


def test_importing_workflows_stays_light():
    code = (
        "import sys, workflows; light = 'distributed' not in sys.modules; "
        "import workflows.run; from workflows import run_workflow; "
        "print(light, run_workflow.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env()
    ).stdout
    assert out.split() == ["True", "workflows.api"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _run_script(folder: Path, inputs: dict[str, str], body: str) -> subprocess.CompletedProcess:
    """Run ``body`` as a script file in ``folder``, after imports and ``workflow``, a tiny
    workflow on a ``local`` (process) cluster."""
    workflow = tiny(inputs, folder / "run.zarr", kind="local")
    script = folder / "script.py"
    script.write_text(SCRIPT_HEAD.format(workflow=workflow) + textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,  # a hang fails the test
    )


SCRIPT_HEAD = """\
import os, sys
from cluster import open_client
from workflows import run_workflow
workflow = {workflow!r}

"""


def test_a_script_without_the_main_guard_runs_on_threads(inputs, tmp_path):
    script = """\
        summary = run_workflow(workflow, progress=False)
        print("segments", summary["outputs"]["segmentations"][0]["segments"])
        with open_client("local:1") as client:
            print("workers here", set(client.run(os.getpid).values()) == {os.getpid()})
        """
    done = _run_script(tmp_path, inputs, script)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Nanny" not in done.stderr, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "RuntimeWarning" in line]
    assert len(warnings) == 2, done.stderr
    assert warnings[0].startswith(f"{tmp_path / 'script.py'}:6: RuntimeWarning: petaseg: ")
    assert 'outside `if __name__ == "__main__":`' in warnings[0]
    assert "running on threads instead" in warnings[0]
    assert "workers here True" in done.stdout
    assert int(done.stdout.split()[1]) > 1


def test_a_script_with_the_main_guard_keeps_its_worker_processes(inputs, tmp_path):
    script = """\
        if __name__ == "__main__":
            with open_client("local:1") as client:
                print("workers here", set(client.run(os.getpid).values()) == {os.getpid()})
                summary = run_workflow(workflow, client=client, progress=False)
            print("segments", summary["outputs"]["segmentations"][0]["segments"])
        """
    done = _run_script(tmp_path, inputs, script)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "workers here False" in done.stdout
    assert int(done.stdout.split()[-1]) > 1
