"""Workflows: the validated YAML schema, overrides, the whole pipeline through run_workflow with
finished stages skipped, the run/status/submit commands and the clear refusals."""

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import ClusterError, ConfigError, InputError
from pipeline.io.volume import open_volume
from tests.conftest import REPO
from workflows.cli import main
from workflows.cluster_spec import ClusterSection
from workflows.config import apply_overrides, load_config
from workflows.run import run_workflow
from workflows.schema import Workflow
from workflows.steps import correction_model, plan_of, require_gpu_workers

EXAMPLES = REPO / "workflows" / "examples"
# every stage of a workflow with raw input, ground truth, correction and export, in order
ALL_STAGES = [
    "input",
    "predict",
    "fragments",
    "graph",
    "agglomerate",
    "segment",
    "correct",
    "relabel",
    "evaluate",
    "export",
]


def small(out: Path, **stages) -> dict:
    """A small synthetic workflow with the shipped boundary and correction models."""
    return {
        "name": "small",
        "input": {"synthetic": {"shape": [32, 64, 64], "seed": 5}},
        "output": str(out / "run.zarr"),
        "stages": {
            "predict": {"block": [32, 64, 64], "overlap": 0.25},
            "fragments": {"block": [32, 32, 32], "context": [8, 8, 8], "min_size": 30},
            "segment": {"thresholds": [0.5, 0.7]},
            "export": {"min_size": 200},
            **stages,
        },
        "cluster": {"kind": "threads", "workers": 2},
    }


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_workflow_validates(path):

    wf = load_config(Workflow, path)
    assert Path(correction_model(wf.stages.correct.model)).is_file()  # a shipped model
    assert wf.output.endswith(".zarr")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"stages": {"fragments": {"treshold": 0.5}}}, "stages.fragments.treshold: unknown key"),
        (
            {"stages": {"predict": {"overlap": "half"}}},
            "stages.predict.overlap: Input should be a valid number",
        ),
        (
            {"stages": {"predict": {"overlap": 1.5}}},
            "stages.predict.overlap: Input should be less than 1 (got 1.5)",
        ),
        ({"input": {}}, "give input.raw (and/or input.boundaries) or input.synthetic"),
        ({"cluster": {"kind": "cloud"}}, "cluster.kind: Input should be 'local', 'threads'"),
        ({"output": "out/run"}, "ending in .zarr"),
        ({"stages": {"correct": {"threshold": 0.55}}}, "not one of stages.segment.thresholds"),
        (
            {"input": {"boundaries": "b.zarr/b"}},
            "stages.correct needs the EM image",
        ),
        (
            {"output": "s3://bucket/run.zarr"},
            "set stages.correct.edit_log to a local path",
        ),
    ],
)
def test_invalid_workflows_name_the_key(tmp_path, change, message):
    data = small(tmp_path)
    for key, value in change.items():
        if key == "stages":  # merged into the stage sections
            for stage, params in value.items():
                data["stages"][stage] = {**data["stages"].get(stage, {}), **params}
        else:
            data[key] = value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(Workflow, None, data=data)


def test_missing_and_unparseable_files_and_overrides(tmp_path):
    with pytest.raises(ConfigError, match="does not exist; see workflows/examples/"):
        load_config(Workflow, tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Workflow, bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(Workflow, bad)
    data = apply_overrides({"stages": {}}, ["stages.segment.thresholds=[0.3, 0.5]", "name=x"])
    assert data == {"stages": {"segment": {"thresholds": [0.3, 0.5]}}, "name": "x"}
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["stages.segment"])
    with pytest.raises(ConfigError, match="'name' is not a section"):
        apply_overrides({"name": "x"}, ["name.first=1"])
    wf = load_config(Workflow, EXAMPLES / "demo.yaml", ["stages.predict.tta=true"])
    assert wf.stages.predict.tta is True


def test_cluster_specs_from_the_command_line():
    assert ClusterSection.from_option("local").kind == "local"
    assert ClusterSection.from_option("local:3").workers == 3
    assert ClusterSection.from_option("threads:2").kind == "threads"
    section = ClusterSection.from_option("tls://10.1.2.3:8786")
    assert (section.kind, section.address) == ("scheduler", "tls://10.1.2.3:8786")
    spec = section.spec()
    assert (spec.kind, spec.address, spec.bind) == ("scheduler", "tls://10.1.2.3:8786", "127.0.0.1")


def test_missing_inputs_and_models_are_refused_before_any_work(tmp_path, client):
    data = small(tmp_path)
    data["input"] = {"raw": str(tmp_path / "none.zarr/raw")}
    with pytest.raises(InputError, match="none.zarr"):
        run_workflow(load_config(Workflow, None, data=data), client, progress=False)
    data = small(tmp_path, correct={"model": "no-such-model"})
    with pytest.raises(ConfigError, match="neither a shipped correction model"):
        run_workflow(load_config(Workflow, None, data=data), client, progress=False)
    assert not (tmp_path / "run.zarr").exists()


def test_require_gpu_refuses_a_cpu_only_cluster(client):
    with pytest.raises(ClusterError, match="advertises a GPU"):
        require_gpu_workers(client)


def test_whole_pipeline_then_rerun_skips_and_a_change_reruns_downstream(tmp_path, client):
    wf = load_config(Workflow, None, data=small(tmp_path))
    first = run_workflow(wf, client, progress=False)
    assert list(first["stages"]) == ALL_STAGES == [s.name for s in plan_of(wf)]
    assert not any(t["skipped"] for t in first["stages"].values())
    segs = first["outputs"]["segmentations"]
    assert [s["corrected"] for s in segs] == [False, False, True]
    assert len(first["metrics"]) == 3 and all(m["vi_sum"] >= 0 for m in first["metrics"])
    final = open_volume(first["outputs"]["final_segmentation"]).read()
    assert len(np.unique(final)) > 5
    # the corrected segmentation is the edit log's head, relabelled
    from pipeline.proofread.editlog import EditLog

    with EditLog(first["outputs"]["edit_log"]) as log:
        head = log.lut()
        assert all(e["author"] == "petaseg-correct" for e in log.log())
    frag = open_volume(first["outputs"]["fragments"]).read()
    from pipeline.lut import apply_lut

    np.testing.assert_array_equal(apply_lut(frag, head), final)
    state = json.loads(Path(first["outputs"]["viewer_state"]).read_text())
    layers = {layer["name"] for layer in state["state"]["layers"]}
    assert {"image", "segmentation"} <= layers
    assert first["correction"]["ranked"] == len(
        json.loads(Path(first["outputs"]["candidates"]).read_text())["candidates"]
    )

    again = run_workflow(wf, client, progress=False)
    assert all(t["skipped"] for t in again["stages"].values())
    assert again["metrics"] == first["metrics"]

    changed = load_config(Workflow, None, data=small(tmp_path, segment={"thresholds": [0.6]}))
    third = run_workflow(changed, client, progress=False)
    skipped = {n for n, t in third["stages"].items() if t["skipped"]}
    assert skipped == {"input", "predict", "fragments", "graph", "agglomerate"}
    assert [m["threshold"] for m in third["metrics"]] == [0.6, 0.6]


def test_correcting_a_segmentation_without_touching_segments(tmp_path, client):
    # at threshold 0.99 nearly everything is one segment: no pair candidates at all
    data = small(tmp_path, segment={"thresholds": [0.99]}, export={"enabled": False})
    result = run_workflow(load_config(Workflow, None, data=data), client, progress=False)
    before, after = result["metrics"]
    assert after["corrected"] and after["vi_sum"] >= 0
    assert result["correction"]["ranked"] >= 0


def test_run_status_and_submit_commands(tmp_path, capsys):
    import yaml
    from distributed import Client, LocalCluster

    path = tmp_path / "wf.yaml"
    data = small(tmp_path, correct={"enabled": False}, export={"enabled": False})
    data["stages"]["predict"].update(block=[16, 64, 64], patch=[16, 64, 64])
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path), "--cluster", "threads:2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["metrics"][0]["vi_sum"] >= 0 and "correct" not in summary["stages"]
    assert main(["status", data["output"]]) == 0
    text = capsys.readouterr().out
    assert "stage relabel" in text and "2/2 blocks  complete" in text

    # submit to a running scheduler: detach, reattach, same result
    other = tmp_path / "submitted.zarr"
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", dashboard_address=None
    ) as cluster:
        with Client(cluster):
            args = ["submit", str(path), "--scheduler", cluster.scheduler_address]
            args += ["--set", f"output={other}"]
            assert main([*args, "--detach"]) == 0
            assert "follow it with: petaseg status" in capsys.readouterr().out
            assert main(args) == 0
            result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["metrics"][0]["vi_sum"] == summary["metrics"][0]["vi_sum"]
    assert main(["status", str(other), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert "relabel" in status["stages"] and all(b["complete"] for b in status["blocks"])
