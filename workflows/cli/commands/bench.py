"""``petaseg bench NAME --json``: run ``benchmarks/bench_NAME.py`` and print its result last."""

from __future__ import annotations

import importlib
import json

import typer

from pipeline.errors import InputError


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        name: str = typer.Argument(..., help="scheduler, model, inference, segmentation, ..."),
        as_json: bool = typer.Option(
            False, "--json", help="print the result as one JSON line last"
        ),
    ) -> None:
        """Side-by-side benchmarks against peer tools (see benchmarks/)."""
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
        except ModuleNotFoundError as e:
            if e.name != f"benchmarks.bench_{name}":
                raise
            raise InputError(f"no benchmark named {name!r} (benchmarks/bench_{name}.py)") from None
        result = module.main(json_out=as_json)
        if as_json:
            print(json.dumps(result, default=str))
        else:
            for k, v in result.items():
                print(f"{k}: {v}")
