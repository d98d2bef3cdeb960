"""``petaseg export`` (Neuroglancer precomputed layers, meshes, skeletons and a viewer state; or,
with ``--format ome-zarr``, one OME-Zarr image with the segmentation as its label image) and
``petaseg view`` (serve an export folder on 127.0.0.1 and open a Neuroglancer viewer)."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

import typer

from workflows.cli.options import AsJson, Chunks, Cluster, Lut, client_for, parse_zyx, print_json

ObjectBlock = Annotated[
    str, typer.Option(help="mesh/skeleton block Z,Y,X voxels (of the mesh scale level)")
]
MeshLevel = Annotated[
    int | None,
    typer.Option(
        help="scale level to mesh (0 = full resolution; default: the coarsest level where a "
        "--min-size segment keeps 64 voxels)"
    ),
]
SkeletonLevel = Annotated[
    int | None,
    typer.Option(
        help="scale level to skeletonize (0 = full resolution; default: the coarsest level "
        "where a --min-size segment keeps 8 voxels)"
    ),
]
Unsharded = Annotated[
    bool, typer.Option(help="legacy one-file-per-segment meshes and skeletons (small volumes)")
]
EditLogPath = Annotated[
    str | None,
    typer.Option(
        help="proofreading edit log: --segmentation is the fragments, shown at --version; an "
        "earlier export into OUT from this log is updated incrementally"
    ),
]
Version = Annotated[int | None, typer.Option(help="edit log version (default: the latest)")]


class ExportFormat(StrEnum):
    precomputed = "precomputed"
    ome_zarr = "ome-zarr"


Format = Annotated[
    ExportFormat,
    typer.Option(
        "--format",
        help="precomputed (Neuroglancer layers, meshes, skeletons) or ome-zarr (OUT, e.g. "
        "x.ome.zarr, is the --image with --segmentation as its label image OUT/labels/NAME)",
    ),
]
LabelName = Annotated[
    str, typer.Option(help="--format ome-zarr: the label image's name (OUT/labels/NAME)")
]


def export(
    out: Annotated[str, typer.Argument(help="output folder (or s3://, gs:// prefix)")],
    image: Annotated[
        str | None, typer.Option(help="EM image volume URL (e.g. out.zarr/raw)")
    ] = None,
    segmentation: Annotated[
        str | None,
        typer.Option(help="segmentation volume URL, or the fragments when --lut is given"),
    ] = None,
    lut: Lut = None,
    candidates: Annotated[
        str | None,
        typer.Option(help="candidates JSON from `petaseg correct`, shown as point annotations"),
    ] = None,
    levels: Annotated[
        int | None, typer.Option(help="scale levels (default: until one chunk)")
    ] = None,
    chunks: Chunks = None,
    meshes: Annotated[bool, typer.Option(help="write meshes (zmesh)")] = True,
    skeletons: Annotated[bool, typer.Option(help="write skeletons (kimimaro)")] = True,
    min_size: Annotated[
        int, typer.Option(help="voxels; smaller segments get no mesh/skeleton")
    ] = 1000,
    object_block: ObjectBlock = "128,128,128",
    mesh_level: MeshLevel = None,
    skeleton_level: SkeletonLevel = None,
    unsharded: Unsharded = False,
    edit_log: EditLogPath = None,
    version: Version = None,
    base: Annotated[
        str, typer.Option(help="URL the folder will be served from (for the state)")
    ] = "http://127.0.0.1:8000",
    cluster: Cluster = None,
    as_json: AsJson = False,
    fmt: Format = ExportFormat.precomputed,
    label_name: LabelName = "segmentation",
) -> None:
    """Export image + segmentation to Neuroglancer precomputed or OME-Zarr (blockwise, resumable)."""
    if fmt is ExportFormat.ome_zarr:
        precomputed_only = {"lut": lut, "candidates": candidates, "edit-log": edit_log}
        _ome_zarr(
            out, image, segmentation, label_name, levels, chunks, cluster, as_json, precomputed_only
        )
        return
    from pipeline.export.objects import ObjectParams
    from pipeline.export.precomputed import export as run_export

    params = ObjectParams(
        meshes=meshes,
        skeletons=skeletons,
        min_size=min_size,
        format="legacy" if unsharded else "sharded",
        mesh_level=mesh_level,
        skeleton_level=skeleton_level,
    )
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
            edit_log=edit_log,
            version=version,
        )
    if as_json:
        print_json(result.as_dict())
        return
    for name, path in result.layers.items():
        print(f"{name}: {path}")
    print(f"viewer state: {out}/viewer_state.json")
    print(f"open with: petaseg view {out}")


def view(
    out: Annotated[str, typer.Argument(help="folder written by `petaseg export`")],
    port: Annotated[
        int, typer.Option(help="the one port for the viewer and the data (0 = any free port)")
    ] = 0,
    bind: Annotated[
        str, typer.Option(help="address to listen on (127.0.0.1; 0.0.0.0 for other machines)")
    ] = "127.0.0.1",
    public_viewer: Annotated[
        bool, typer.Option(help="also print a URL of the hosted Neuroglancer demo app")
    ] = False,
    browser: Annotated[bool, typer.Option(help="also open the URL in the default browser")] = False,
    seconds: Annotated[
        float, typer.Option(help="stop after this many seconds (0 = serve until Ctrl-C)")
    ] = 0,
) -> None:
    """Serve OUT and a Neuroglancer viewer of it on one port (127.0.0.1 unless --bind)."""
    from pipeline.export.state import DEMO_APP, state_url
    from pipeline.export.view import open_viewer

    session = open_viewer(out, port=port, bind=bind, public_viewer=public_viewer)
    try:
        print(f"data:   {session.data_url}", flush=True)
        print(f"viewer: {session.url}", flush=True)
        if public_viewer:
            print(f"hosted: {state_url(session.state, DEMO_APP)}", flush=True)
        if browser:
            import webbrowser

            webbrowser.open(session.url)
        deadline = time.monotonic() + seconds if seconds > 0 else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        session.close()


def _ome_zarr(
    out: str,
    image: str | None,
    segmentation: str | None,
    label_name: str,
    levels: int | None,
    chunks: str | None,
    cluster: str | None,
    as_json: bool,
    precomputed_only: dict[str, str | None],
) -> None:
    """``petaseg export --format ome-zarr``: OUT is the image, the segmentation its label."""
    from pipeline.errors import InputError
    from pipeline.export.ome_zarr import export_ome_zarr

    given = [f"--{name}" for name, value in precomputed_only.items() if value is not None]
    if given:
        raise InputError(
            f"{', '.join(given)}: only with --format precomputed; --format ome-zarr copies the "
            "--image and --segmentation volumes as they are (relabel fragments first)"
        )
    if image is None:
        raise InputError(
            "--format ome-zarr needs --image: OUT is that image, with --segmentation as its label"
        )
    labels = {label_name: segmentation} if segmentation else {}
    zyx = parse_zyx(chunks, "chunks")
    with client_for(cluster) as client:
        result = export_ome_zarr(out, image, labels, client=client, levels=levels, chunks=zyx)
    if as_json:
        print_json(result.as_dict())
        return
    print(f"image: {result.url} ({result.levels} scale levels)")
    for name, url in result.labels.items():
        print(f"label {name}: {url}")
    print(f"open with: napari {out} (napari-ome-zarr), or ome_zarr.reader in Python")
