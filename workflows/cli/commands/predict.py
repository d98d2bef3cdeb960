"""``petaseg predict``: a boundary/affinity network over a volume, blockwise, into Zarr."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.errors import InputError
from workflows.cli.options import AsJson, Chunks, Cluster, client_for, parse_zyx, print_json

DTYPES = ("uint8", "float16", "float32")


def predict(
    model: Annotated[
        str,
        typer.Option(help="shipped model name (e.g. fib-boundary-v1) or a checkpoint .pt path"),
    ],
    input: Annotated[str, typer.Option("--input", help="raw volume URL (Zarr, .h5/dataset, ...)")],
    output: Annotated[
        str, typer.Option("--output", help="output Zarr URL, e.g. out.zarr/boundary")
    ],
    block: Annotated[
        str | None,
        typer.Option(
            help="block shape Z,Y,X in voxels (default: ~4 patches, a multiple of chunks)"
        ),
    ] = None,
    patch: Annotated[
        str | None, typer.Option(help="network patch Z,Y,X (default 64 per axis)")
    ] = None,
    overlap: Annotated[float, typer.Option(help="patch overlap fraction in [0, 1)")] = 0.5,
    tta: Annotated[
        bool, typer.Option("--tta", help="average over flips/transposes (16x cost)")
    ] = False,
    dtype: Annotated[str, typer.Option(help="output dtype: uint8, float16 or float32")] = "uint8",
    batch_size: Annotated[
        int | None, typer.Option(help="patches per forward pass (default: 2 on CPU, 8 on GPU)")
    ] = None,
    device: Annotated[
        str, typer.Option(help="auto (GPU when the worker has one), cpu, cuda")
    ] = "auto",
    chunks: Chunks = None,
    cluster: Cluster = None,
    as_json: AsJson = False,
) -> None:
    """Predict boundaries (or affinities) over a volume, seam-free and resumable."""
    from pipeline.stages.predict import plan_predict, run_predict

    if dtype not in DTYPES:
        raise InputError(f"--dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    task = plan_predict(  # refuses bad input before Dask starts; the checkpoint is read once
        model,
        input,
        output,
        block=parse_zyx(block, "block"),
        patch=parse_zyx(patch, "patch"),
        chunks=parse_zyx(chunks, "chunks"),
        overlap=overlap,
        tta=tta,
        dtype=dtype,
        batch_size=batch_size,
        device=device,
    )
    with client_for(cluster) as client:
        report = run_predict(task, client=client)
    if as_json:
        print_json(report.as_dict())
    else:
        print(
            f"predict: {report.blocks_run} blocks predicted, {report.blocks_skipped} already "
            f"done, {report.seconds:.1f} s ({report.voxels_per_s:,.0f} voxels/s) -> {output}"
        )
