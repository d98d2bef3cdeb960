"""Option parsing shared by commands: Z,Y,X triples and the cluster client."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from ..errors import InputError


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


@contextlib.contextmanager
def client_for(spec: str | None) -> Iterator[object]:
    """A Dask client for ``--cluster`` (default: embedded LocalCluster), closed afterwards."""
    from ..cluster_bridge import make_client

    client = make_client(spec)
    try:
        yield client
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()


def print_json(obj: dict) -> None:
    print(json.dumps(obj, default=str))
