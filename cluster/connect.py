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


def tls_handshake_problem(address: str, security: Security, timeout: float) -> str | None:
    """Why a TLS handshake with ``address`` fails (a certificate the other side rejects, say),
    or None when it succeeds or nothing listens there: tells wrong certificates apart from an
    unreachable scheduler."""
    import socket
    import ssl

    host, port = address.split("://", 1)[1].rsplit(":", 1)
    ctx = security.get_connection_args("client")["ssl_context"]
    try:
        with socket.create_connection((host, int(port)), timeout=min(timeout, 5.0)) as sock:
            with ctx.wrap_socket(sock, server_hostname=host) as tls:
                tls.settimeout(min(timeout, 5.0))
                tls.recv(1)  # TLS 1.3: the server's rejection of our certificate arrives here
    except ssl.SSLError as e:
        return f"{e.__class__.__name__}: {e.reason or e}"
    except (OSError, TimeoutError):
        return None
    return None


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
        if spec.startswith("tls://"):
            problem = tls_handshake_problem(spec, security, timeout)
            if problem:
                raise ClusterConnectError(
                    f"the Dask scheduler at {spec} answers, but the TLS handshake fails: "
                    f"{problem}. Check that PETASEG_TLS_CA is the CA that signed the scheduler's "
                    "certificate and that PETASEG_TLS_CERT/PETASEG_TLS_KEY are signed by the CA "
                    "the scheduler trusts"
                ) from None
        raise ClusterConnectError(
            f"cannot reach the Dask scheduler at {spec} within {timeout:.0f} s ({e.__class__.__name__}: "
            f"{e}). Start one (`dask scheduler`) and check host, port and firewall, or omit "
            "--cluster to run on an embedded LocalCluster"
        ) from None
