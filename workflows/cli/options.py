"""Option parsing shared by commands: Z,Y,X triples and the cluster client."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence

from distributed import Client

from cluster import open_client, parse_cluster_option
from pipeline.errors import InputError
from pipeline.geometry import Roi


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
