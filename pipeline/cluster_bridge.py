"""``cluster.make_client`` with its errors turned into petaseg's user-facing ClusterError."""

from __future__ import annotations

from cluster import ClusterConnectError
from cluster import make_client as _make_client

from .errors import ClusterError


def make_client(spec: str | None = None, **kw):
    try:
        return _make_client(spec, **kw)
    except ClusterConnectError as e:
        raise ClusterError(str(e)) from None
