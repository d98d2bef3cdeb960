"""What commands share: option declarations (cluster, JSON flag, stage block and context, the
watershed parameters, the region graph's tables and scoring, the inputs of correction, the edit
log's author and reason, workflow files and overrides), Z,Y,X and ROI parsing, the cluster
client, and printing (JSON, one line per threshold).

The declarations are ``Annotated`` types: a command writes ``cluster: Cluster = None`` and its
function stays a plain Python function with real defaults (callable from a test)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated

import typer
from distributed import Client

from cluster import open_client, parse_cluster_option
from pipeline.errors import InputError
from pipeline.geometry import Roi

CLUSTER_HELP = (
    "local (a worker process per core), local:N, threads (threads in this process), threads:N, "
    "tcp://host:port or tls://host:port"
)

Cluster = Annotated[str | None, typer.Option(help=CLUSTER_HELP)]
AsJson = Annotated[bool, typer.Option("--json", help="print one JSON object")]

# the blockwise segmentation stages (segment, fragments)
StageBlock = Annotated[str | None, typer.Option(help="block shape Z,Y,X in voxels (default 128^3)")]
WatershedContext = Annotated[
    str | None, typer.Option(help="watershed context Z,Y,X in voxels (default 16)")
]

# seeded watershed (see pipeline.seg.watershed.FragmentParams)
WsThreshold = Annotated[
    float, typer.Option(help="boundary >= this is membrane for the seed distance transform")
]
SigmaSeeds = Annotated[float, typer.Option(help="smoothing of the distance transform (voxels)")]
SigmaWeights = Annotated[float, typer.Option(help="smoothing of the flooding height (voxels)")]
Alpha = Annotated[float, typer.Option(help="height = alpha*boundary + (1-alpha)*(1-distance)")]
MinSize = Annotated[int, typer.Option(help="fragments under this many voxels join a neighbour")]
Mode = Annotated[str, typer.Option(help="3d, or 2d (one watershed per z-section)")]

# the region graph, its agglomeration and the segmentations at thresholds
Tables = Annotated[str, typer.Option(help="tables folder (or s3:// prefix) of the region graph")]
FragmentsArg = Annotated[str, typer.Argument(help="fragments URL")]
Bins = Annotated[int, typer.Option(help="histogram bins per edge (quantile scoring)")]
Scoring = Annotated[
    str,
    typer.Option(help="mean, median, quantile:0.75, or learned:MODEL (e.g. learned:fib-edge-v1)"),
]
MaxGlobalEdges = Annotated[
    int, typer.Option(help="above this many edges agglomerate in two levels")
]
LocalThreshold = Annotated[
    float, typer.Option(help="two-level scheme: blockwise merges below this")
]
Thresholds = Annotated[
    list[str] | None,
    typer.Option(
        help="merge threshold(s) (default 0.7); repeat or comma-separate for several outputs "
        "(<output>_t<T>)"
    ),
]
Lut = Annotated[
    str | None, typer.Option(help="fragment->segment lookup table (.parquet or a folder of them)")
]
Chunks = Annotated[str | None, typer.Option(help="output chunks Z,Y,X (default 64,64,64)")]

# what error correction reads beside the tables
Fragments = Annotated[str, typer.Option(help="fragments volume URL")]
RawImage = Annotated[str, typer.Option(help="EM image URL (same grid as the fragments)")]
Boundaries = Annotated[str, typer.Option(help="boundary map URL the fragments came from")]

# proofreading edits
EditLogFile = Annotated[str, typer.Argument()]
Author = Annotated[str | None, typer.Option(help="who made the edit (default: the login name)")]
Reason = Annotated[str, typer.Option(help="why (kept in the log)")]
ExpectVersion = Annotated[
    int | None, typer.Option(help="fail if the segments changed since this version")
]

# workflows
WorkflowFile = Annotated[str, typer.Argument(help="workflow YAML (see workflows/examples/)")]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a key of the workflow: stages.predict.overlap=0.25"),
]
OutputFolder = Annotated[Path, typer.Option(help="output folder")]


def parse_roi(
    text: str | None,
    end: Sequence[int] | None = None,
    unit: str = "voxels",
    begin: Sequence[int] | None = None,
) -> Roi | None:
    """``z0:z1,y0:y1,x0:x1`` (in voxels, or ``unit``); an empty side of ``:`` means the axis's
    ``begin`` (default 0) or ``end`` (the volume's shape, when given)."""
    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    lows, highs = [], []
    try:
        if len(parts) != 3:
            raise ValueError
        for axis, part in enumerate(parts):
            lo, hi = part.split(":")
            lows.append(int(lo) if lo else (int(begin[axis]) if begin is not None else 0))
            if hi:
                highs.append(int(hi))
            elif end is not None:
                highs.append(int(end[axis]))
            else:
                raise ValueError
    except ValueError:
        option = "--roi" if unit == "voxels" else f"--roi-{unit}"
        raise InputError(
            f"{option} {text!r}: expected z0:z1,y0:y1,x0:x1 in {unit}, e.g. "
            + ("0:130,0:250,0:250" if unit == "voxels" else "0:1300,0:2500,0:2500")
        ) from None
    return Roi.from_bounds(lows, highs)


def parse_zyx(text: str | None, name: str) -> tuple[int, int, int] | None:
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise InputError(
            f"--{name} {text!r}: expected three integers Z,Y,X, e.g. 64,128,128"
        ) from None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or any(v <= 0 for v in values):
        raise InputError(f"--{name} {text!r}: expected three positive integers Z,Y,X")
    return values  # type: ignore[return-value]


def client_for(option: str | None) -> contextlib.AbstractContextManager[Client]:
    """``with client_for(--cluster) as client:`` (default: an embedded LocalCluster); the client
    and its cluster are closed afterwards."""
    return open_client(parse_cluster_option(option))


def print_json(obj: dict) -> None:
    print(json.dumps(obj, default=str))


def print_per_threshold(rows: Iterable[dict], line: str) -> None:
    """One line per threshold: ``line`` formatted with each row's keys, e.g.
    ``"relabel: threshold {threshold:g}: {segments} segments -> {segmentation}"``; a generator
    prints each row as it comes."""
    for row in rows:
        print(line.format_map(row))
