"""``petaseg demo``."""

from __future__ import annotations

import typer

from workflows.cli.options import client_for, parse_zyx


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        output: str = typer.Option("petaseg-demo", help="output folder"),
        shape: str = typer.Option("64,128,128", help="synthetic volume shape Z,Y,X"),
        seed: int = typer.Option(0, help="seed of the synthetic volume"),
        input_url: str = typer.Option(
            None, "--input", help="run on this volume instead of synthetic data"
        ),
        cluster: str = typer.Option(
            "local", help="local, local:N, threads, tcp://... or tls://..."
        ),
        set_: list[str] = typer.Option(
            None, "--set", help="override a key of the demo workflow: stages.predict.tta=true"
        ),
    ) -> None:
        """Run the pipeline on a synthetic EM volume (or --input) on an embedded LocalCluster."""
        from workflows.demo import run_demo

        with client_for(cluster) as client:
            link = getattr(client, "dashboard_link", None)
            if link:
                print(f"Dask dashboard: {link}")
            summary = run_demo(
                output,
                parse_zyx(shape, "shape"),
                seed,
                input_url,
                client=client,
                overrides=set_,
            )
        print(summary.text())
