"""``petaseg export``: Neuroglancer precomputed layers, meshes, skeletons and a viewer state."""

from __future__ import annotations

import typer

from workflows.cli.options import client_for, parse_zyx, print_json


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        out: str = typer.Argument(..., help="output folder (or s3://, gs:// prefix)"),
        image: str = typer.Option(None, help="EM image volume URL (e.g. out.zarr/raw)"),
        segmentation: str = typer.Option(
            None, help="segmentation volume URL, or the fragments when --lut is given"
        ),
        lut: str = typer.Option(
            None, help="fragment->segment lookup table (.parquet or a folder of them)"
        ),
        candidates: str = typer.Option(
            None, help="candidates JSON from `petaseg correct`, shown as point annotations"
        ),
        levels: int = typer.Option(None, help="scale levels (default: until one chunk)"),
        chunks: str = typer.Option(None, help="chunk shape Z,Y,X (default 64,64,64)"),
        meshes: bool = typer.Option(True, help="write meshes (zmesh)"),
        skeletons: bool = typer.Option(True, help="write skeletons (kimimaro)"),
        min_size: int = typer.Option(1000, help="voxels; smaller segments get no mesh/skeleton"),
        object_block: str = typer.Option("128,128,128", help="mesh/skeleton block Z,Y,X voxels"),
        base: str = typer.Option(
            "http://127.0.0.1:8000", help="URL the folder will be served from (for the state)"
        ),
        cluster: str = typer.Option(None, help="local, local:N, tcp://host:port, tls://..."),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        """Export image + segmentation to Neuroglancer precomputed (blockwise, resumable)."""
        from pipeline.export.objects import ObjectParams
        from pipeline.export.precomputed import export as run_export

        params = ObjectParams(meshes=meshes, skeletons=skeletons, min_size=min_size)
        with client_for(cluster) as client:
            result = run_export(
                out,
                image_url=image,
                segmentation_url=segmentation,
                lut=lut,
                candidates=candidates,
                levels=levels,
                chunks=parse_zyx(chunks, "chunks"),
                objects=params,
                object_block=parse_zyx(object_block, "object-block"),
                base=base,
                client=client,
            )
        if as_json:
            print_json(result.as_dict())
            return
        for name, path in result.layers.items():
            print(f"{name}: {path}")
        print(f"viewer state: {out}/viewer_state.json")
        print(f"open with: petaseg view {out}")
