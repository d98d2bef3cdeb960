"""One client lifecycle: open a client (and the cluster it starts) from a spec, close both."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from distributed import Client

from cluster.connect import connect
from cluster.main_guard import processes_or_threads
from cluster.spec import ClusterSpec, parse_cluster_option


@contextlib.contextmanager
def open_client(spec: ClusterSpec | str | None = None) -> Iterator[Client]:
    """``with open_client(spec) as client:`` a client for ``spec`` (a ``ClusterSpec``, a
    ``--cluster`` shorthand, or None for an embedded LocalCluster); on leaving, the client and
    the cluster it started are closed. A ``local`` (process) cluster asked for at module level
    of a script without an ``if __name__ == "__main__":`` guard runs on threads, with a warning
    (``cluster.main_guard``): its worker processes would re-run the script."""
    if not isinstance(spec, ClusterSpec):
        spec = parse_cluster_option(spec)
    client = connect(processes_or_threads(spec))
    try:
        yield client
    finally:
        close_client(client)


def close_client(client: Client) -> None:
    """Close ``client`` and the cluster it owns (an embedded or deployed one; a client of a
    scheduler someone else started owns none)."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()
