"""``petaseg run``, ``petaseg submit`` and ``petaseg status`` (a workflow YAML end to end, here
or on a running scheduler) and ``petaseg demo`` (the whole pipeline on a synthetic volume)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.errors import InputError
from workflows.cli.options import (
    CLUSTER_HELP,
    AsJson,
    Cluster,
    OutputFolder,
    Overrides,
    WorkflowFile,
    client_for,
    parse_zyx,
)


def _load(workflow: str, overrides: list[str] | None, cluster: str | None):
    from workflows.cluster_spec import ClusterSection
    from workflows.config import load_config
    from workflows.schema import Workflow

    wf = load_config(Workflow, workflow, overrides or [])
    if cluster:
        wf = wf.model_copy(update={"cluster": ClusterSection.from_option(cluster, wf.cluster.tls)})
    return wf.with_absolute_paths()  # resolved here, where they were written for


def run(
    workflow: WorkflowFile,
    cluster: Annotated[
        str | None,
        typer.Option(help=f"override the workflow's cluster: {CLUSTER_HELP}"),
    ] = None,
    set_: Overrides = None,
    as_json: AsJson = False,
) -> None:
    """Run a workflow end to end; finished stages are skipped."""
    from cluster import open_client
    from pipeline.runner.progress import announce_dashboard
    from workflows.run import check_workflow, run_workflow
    from workflows.summary import metric_lines

    wf = _load(workflow, set_, cluster)
    check_workflow(wf)  # a missing input is named before a cluster starts or a step runs
    with open_client(wf.cluster.spec()) as client:
        if not as_json:
            announce_dashboard(client)
        summary = run_workflow(wf, client, progress=not as_json)
    if as_json:
        print(json.dumps(summary, default=str))
        return
    print(f"{wf.name}: done -> {summary['output']}")
    for name, t in summary["stages"].items():
        extra = " (skipped: already done)" if t.get("skipped") else ""
        print(f"  {name:<12} {t.get('seconds', 0):8.2f} s{extra}")
    for line in metric_lines(summary["metrics"]):
        print(line)
    for key in ("overlay", "summary_file"):
        if summary.get(key):
            print(f"  {key.split('_')[0]:<12} {summary[key]}")


def submit(
    workflow: WorkflowFile,
    scheduler: Annotated[str, typer.Option(help="tcp://host:port or tls://host:port")],
    detach: Annotated[
        bool, typer.Option(help="return at once; follow with `petaseg status OUTPUT`")
    ] = False,
    set_: Overrides = None,
) -> None:
    """Submit a workflow to a running scheduler (the driver runs on the cluster)."""
    from cluster import open_client
    from workflows.submit import submit_workflow

    wf = _load(workflow, set_, None)
    spec = wf.cluster.model_copy(update={"kind": "scheduler", "address": scheduler}).spec()
    with open_client(spec) as client:
        result = submit_workflow(wf, client, detach)
    if detach:
        print(f"submitted {result}; follow it with: petaseg status {wf.output}")
    else:
        print(json.dumps(result, default=str))


def status(
    output: Annotated[
        str, typer.Argument(help="the workflow's output container (e.g. out/run.zarr)")
    ],
    as_json: AsJson = False,
) -> None:
    """Progress of a run, read from its done markers (attached or not)."""
    from workflows.status import run_status, status_text

    s = run_status(output)
    if not s["found"]:
        raise InputError(status_text(s))
    print(json.dumps(s) if as_json else status_text(s))


def demo(
    output: OutputFolder = Path("petaseg-demo"),
    shape: Annotated[str, typer.Option(help="synthetic volume shape Z,Y,X")] = "64,128,128",
    seed: Annotated[int, typer.Option(help="seed of the synthetic volume")] = 0,
    input_url: Annotated[
        str | None, typer.Option("--input", help="run on this volume instead of synthetic data")
    ] = None,
    cluster: Cluster = "local",
    set_: Overrides = None,
) -> None:
    """Run the pipeline on a synthetic EM volume (or --input) on an embedded LocalCluster."""
    from pipeline.runner.progress import announce_dashboard
    from workflows.demo import run_demo

    with client_for(cluster) as client:
        announce_dashboard(client)
        summary = run_demo(
            output,
            parse_zyx(shape, "shape"),
            seed,
            input_url,
            client=client,
            overrides=set_,
        )
    print(summary.text())
