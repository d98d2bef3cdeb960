"""``petaseg info`` and ``petaseg convert``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from pipeline.errors import InputError
from workflows.cli.options import AsJson, Chunks, Cluster, client_for, parse_roi, parse_zyx

VolumeUrl = Annotated[
    str,
    typer.Argument(
        help="volume URL: out.zarr/raw, s3://..., precomputed://..., f.h5/volumes/raw, stack.tif"
    ),
]
Destination = Annotated[str, typer.Argument(help="Zarr path/s3:// URL or precomputed://...")]
Shards = Annotated[
    str | None, typer.Option(help="output shards Z,Y,X (Zarr only; a multiple of chunks)")
]
ConvertBlock = Annotated[
    str | None, typer.Option(help="block shape Z,Y,X in voxels (a multiple of shards/chunks)")
]
RoiBox = Annotated[
    str | None,
    typer.Option(
        help="copy only this box z0:z1,y0:y1,x0:x1 in VOXELS, counted from the volume's first "
        "voxel (':' = whole axis)"
    ),
]
RoiNm = Annotated[
    str | None,
    typer.Option(
        help="copy only this box z0:z1,y0:y1,x0:x1 in NM, world coordinates as `petaseg info` "
        "shows them (offset included; multiples of the voxel size; ':' = whole axis)"
    ),
]


def _human(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return str(n)


def info(
    url: VolumeUrl,
    as_json: AsJson = False,
) -> None:
    """Shape, dtype, voxel size, offset, chunks/shards and size on disk of a volume."""
    from pipeline.io.volume import open_volume

    d = open_volume(url).describe()
    if as_json:
        print(json.dumps(d))
        return
    print(f"url:         {d['url']}")
    ch = f" x {d['channels']} channels" if d["channels"] else ""
    print(f"shape (zyx): {tuple(d['shape'])}{ch}")
    print(f"dtype:       {d['dtype']}")
    print(f"voxel size:  {tuple(d['voxel_size_nm'])} nm")
    print(f"offset:      {tuple(d['offset_nm'])} nm")
    print(f"chunks:      {tuple(d['chunks'])}")
    print(f"shards:      {tuple(d['shards']) if d['shards'] else 'none'}")
    print(f"on disk:     {_human(d['bytes_on_disk'])}")


def convert(
    src: VolumeUrl,
    dst: Destination,
    chunks: Chunks = None,
    shards: Shards = None,
    block: ConvertBlock = None,
    cluster: Cluster = None,
    roi: RoiBox = None,
    roi_nm: RoiNm = None,
) -> None:
    """Copy a volume blockwise into Zarr or precomputed (resumable); --roi (voxels) or --roi-nm
    (nm) copies a box of it."""
    from pipeline.io.volume import open_volume
    from pipeline.stages.convert import convert as run_convert
    from pipeline.stages.convert import voxel_roi_of

    if roi and roi_nm:
        raise InputError("give --roi (voxels) or --roi-nm (nm), not both")
    box = None
    if roi:
        box = parse_roi(roi, open_volume(src).shape)
    elif roi_nm:
        source = open_volume(src)
        world = source.roi
        nm = parse_roi(roi_nm, world.end, "nm", begin=world.begin)
        box = voxel_roi_of(nm, source, roi_nm)

    with client_for(cluster) as client:
        report = run_convert(
            src,
            dst,
            parse_zyx(chunks, "chunks"),
            parse_zyx(shards, "shards"),
            parse_zyx(block, "block"),
            client=client,
            roi=box,
        )
    print(
        f"convert: {report.blocks_run} blocks written, {report.blocks_skipped} already done, "
        f"{report.seconds:.1f} s -> {dst}"
    )
