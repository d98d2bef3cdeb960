"""Connecting to compute: an embedded LocalCluster by default, or a running scheduler by address.

Only dask/distributed here; deployment specs (SLURM, Kubernetes) live beside this file.
"""

from __future__ import annotations

import os
import re

from distributed import Client, LocalCluster
from distributed.security import Security


class ClusterConnectError(RuntimeError):
    """The scheduler cannot be reached; the message says how to fix it."""


def _local_size() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def tls_security(
    ca: str | None = None, cert: str | None = None, key: str | None = None
) -> Security:
    """TLS settings from arguments or ``PETASEG_TLS_CA``/``_CERT``/``_KEY`` (PEM files)."""
    ca = ca or os.environ.get("PETASEG_TLS_CA")
    cert = cert or os.environ.get("PETASEG_TLS_CERT")
    key = key or os.environ.get("PETASEG_TLS_KEY")
    missing = [n for n, v in (("CA", ca), ("certificate", cert), ("key", key)) if not v]
    if missing:
        raise ClusterConnectError(
            f"a tls:// scheduler needs the {', '.join(missing)} file(s): set PETASEG_TLS_CA, "
            "PETASEG_TLS_CERT and PETASEG_TLS_KEY (PEM files), or pass them to make_client"
        )
    for name, path in (("CA", ca), ("certificate", cert), ("key", key)):
        if not os.path.exists(path):
            raise ClusterConnectError(f"TLS {name} file {path} does not exist")
    return Security(
        tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key, require_encryption=True
    )


def make_client(
    spec: str | None = None,
    timeout: float = 10.0,
    security: Security | None = None,
    dashboard: bool = True,
) -> Client:
    """``None``/``"local"``: a LocalCluster with one single-threaded worker process per core;
    ``"local:N"``: N workers; ``"threads"``: in-process threads (tests, debugging);
    ``tcp://host:port`` / ``tls://host:port``: a running scheduler."""
    spec = (spec or "local").strip()
    if spec == "threads" or spec.startswith("threads:"):
        n = int(spec.split(":", 1)[1]) if ":" in spec else _local_size()
        cluster = LocalCluster(
            n_workers=1,
            threads_per_worker=n,
            processes=False,
            dashboard_address=":0" if dashboard else None,
        )
        return Client(cluster)
    m = re.fullmatch(r"local(?::(\d+))?", spec)
    if m:
        n = int(m.group(1)) if m.group(1) else _local_size()
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0" if dashboard else None,
        )
        return Client(cluster)
    if not re.fullmatch(r"(tcp|tls)://[^\s/:]+:\d+", spec):
        raise ClusterConnectError(
            f"cluster spec {spec!r} not understood: use 'local', 'local:N', 'threads', "
            "tcp://host:port or tls://host:port"
        )
    if spec.startswith("tls://") and security is None:
        security = tls_security()
    try:
        return Client(spec, timeout=timeout, security=security)
    except (OSError, TimeoutError) as e:
        raise ClusterConnectError(
            f"cannot reach the Dask scheduler at {spec} within {timeout:.0f} s ({e.__class__.__name__}: "
            f"{e}). Start one (`dask scheduler`) and check host, port and firewall, or omit "
            "--cluster to run on an embedded LocalCluster"
        ) from None
