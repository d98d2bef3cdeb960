"""What commands share: option declarations (cluster, JSON flag, stage block and context, the
watershed parameters), Z,Y,X and ROI parsing, the cluster client and JSON printing.

The declarations are ``Annotated`` types: a command writes ``cluster: Cluster = None`` and its
function stays a plain Python function with real defaults (callable from a test)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Annotated

import typer
from distributed import Client

from cluster import open_client, parse_cluster_option
from pipeline.errors import InputError
from pipeline.geometry import Roi

CLUSTER_HELP = "local, local:N, threads[:N], tcp://host:port or tls://host:port"

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


def parse_roi(text: str | None, shape: Sequence[int] | None = None) -> Roi | None:
    """``z0:z1,y0:y1,x0:x1`` in voxels; an empty side (``:`` or ``0:``) means the whole axis
    when ``shape`` is given."""
    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    begin, end = [], []
    try:
        if len(parts) != 3:
            raise ValueError
        for axis, part in enumerate(parts):
            lo, hi = part.split(":")
            begin.append(int(lo) if lo else 0)
            if hi:
                end.append(int(hi))
            elif shape is not None:
                end.append(int(shape[axis]))
            else:
                raise ValueError
    except ValueError:
        raise InputError(
            f"--roi {text!r}: expected z0:z1,y0:y1,x0:x1 in voxels, e.g. 0:130,0:250,0:250"
        ) from None
    return Roi.from_bounds(begin, end)


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
