"""``petaseg bench NAME --json``: run ``benchmarks/bench_NAME.py`` and print its result last."""

from __future__ import annotations

import importlib
import json
from typing import Annotated

import typer

from pipeline.errors import InputError


def bench(
    name: Annotated[
        str,
        typer.Argument(
            help="scheduler, model, inference, segmentation, agglomeration, export, zarr, "
            "proofread, learned, scale, ..."
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="print the result as one JSON line last")
    ] = False,
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
