"""``petaseg predict``: a boundary/affinity network over a volume, blockwise, into Zarr."""

from __future__ import annotations

import typer

from pipeline.errors import InputError
from workflows.cli.options import client_for, parse_zyx, print_json

DTYPES = ("uint8", "float16", "float32")


def register(app: typer.Typer) -> None:
    @app.command()
    def predict(
        model: str = typer.Option(
            ..., help="shipped model name (e.g. fib-boundary-v1) or a checkpoint .pt path"
        ),
        input: str = typer.Option(..., "--input", help="raw volume URL (Zarr, .h5/dataset, ...)"),
        output: str = typer.Option(..., "--output", help="output Zarr URL, e.g. out.zarr/boundary"),
        block: str = typer.Option(
            None, help="block shape Z,Y,X in voxels (default: ~4 patches, a multiple of chunks)"
        ),
        patch: str = typer.Option(None, help="network patch Z,Y,X (default 64 per axis)"),
        overlap: float = typer.Option(0.5, help="patch overlap fraction in [0, 1)"),
        tta: bool = typer.Option(False, "--tta", help="average over flips/transposes (16x cost)"),
        dtype: str = typer.Option("uint8", help="output dtype: uint8, float16 or float32"),
        batch_size: int = typer.Option(
            None, help="patches per forward pass (default: 2 on CPU, 8 on GPU)"
        ),
        device: str = typer.Option("auto", help="auto (GPU when the worker has one), cpu, cuda"),
        chunks: str = typer.Option(None, help="output chunks Z,Y,X (default 64 per axis)"),
        cluster: str = typer.Option(
            None, help="local, local:N, tcp://host:port or tls://host:port (default local)"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the run report as JSON"),
    ) -> None:
        """Predict boundaries (or affinities) over a volume, seam-free and resumable."""
        from pipeline.stages.predict import plan_predict
        from pipeline.stages.predict import predict as run_predict

        if dtype not in DTYPES:
            raise InputError(f"--dtype {dtype!r}: use one of {', '.join(DTYPES)}")
        options = dict(
            block=parse_zyx(block, "block"),
            patch=parse_zyx(patch, "patch"),
            overlap=overlap,
            tta=tta,
            dtype=dtype,
            batch_size=batch_size,
            device=device,
            chunks=parse_zyx(chunks, "chunks"),
        )
        plan_predict(model, input, output, **options)  # refuse bad input before starting Dask
        with client_for(cluster) as client:
            report = run_predict(model, input, output, client=client, **options)
        if as_json:
            print_json(report.as_dict())
        else:
            print(
                f"predict: {report.blocks_run} blocks predicted, {report.blocks_skipped} already "
                f"done, {report.seconds:.1f} s ({report.voxels_per_s:,.0f} voxels/s) -> {output}"
            )
