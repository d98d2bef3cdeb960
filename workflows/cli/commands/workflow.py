"""``petaseg run``, ``petaseg submit`` and ``petaseg status``."""

from __future__ import annotations

import json

import typer


def _load(workflow: str, overrides: list[str] | None, cluster: str | None):
    from workflows.cluster_spec import ClusterSection
    from workflows.config import load_config
    from workflows.schema import Workflow

    wf = load_config(Workflow, workflow, overrides or [])
    if cluster:
        wf = wf.model_copy(update={"cluster": ClusterSection.from_option(cluster, wf.cluster.tls)})
    return wf


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        workflow: str = typer.Argument(..., help="workflow YAML (see workflows/examples/)"),
        cluster: str = typer.Option(
            None,
            help="override the workflow's cluster: local, local:N, threads, tcp://..., tls://...",
        ),
        set_: list[str] = typer.Option(
            None, "--set", help="override a key: stages.predict.overlap=0.25"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    ) -> None:
        """Run a workflow end to end; finished stages are skipped."""
        from cluster import open_client
        from workflows.run import run_workflow

        wf = _load(workflow, set_, cluster)
        with open_client(wf.cluster.spec()) as client:
            link = getattr(client, "dashboard_link", None)
            if link and not as_json:
                print(f"Dask dashboard: {link}")
            summary = run_workflow(wf, client, progress=not as_json)
        if as_json:
            print(json.dumps(summary, default=str))
            return
        print(f"{wf.name}: done -> {summary['output']}")
        for name, t in summary["stages"].items():
            extra = " (skipped: already done)" if t.get("skipped") else ""
            print(f"  {name:<12} {t.get('seconds', 0):8.2f} s{extra}")
        for m in summary["metrics"]:
            print(
                f"  threshold {m['threshold']:g}: VI split {m['vi_split']:.3f} merge "
                f"{m['vi_merge']:.3f} sum {m['vi_sum']:.3f}, adapted Rand {m['adapted_rand']:.3f}"
            )

    @app.command()
    def submit(
        workflow: str = typer.Argument(..., help="workflow YAML"),
        scheduler: str = typer.Option(..., help="tcp://host:port or tls://host:port"),
        detach: bool = typer.Option(
            False, help="return at once; follow with `petaseg status OUTPUT`"
        ),
        set_: list[str] = typer.Option(None, "--set", help="override a key"),
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

    @app.command()
    def status(
        output: str = typer.Argument(
            ..., help="the workflow's output container (e.g. out/run.zarr)"
        ),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Progress of a run, read from its done markers (attached or not)."""
        from workflows.status import run_status, status_text

        s = run_status(output)
        print(json.dumps(s) if as_json else status_text(s))
