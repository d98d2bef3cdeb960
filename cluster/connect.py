"""Connecting to compute from a ``ClusterSpec``: an embedded LocalCluster (processes or threads),
a running scheduler by address (TLS where asked), or a SLURM / Kubernetes deployment.

Only dask/distributed here; deployment specs (SLURM, Kubernetes) live beside this file.
"""

from __future__ import annotations

import os
import socket
import ssl

from distributed import Client, LocalCluster
from distributed.security import Security

from cluster.errors import ClusterConnectError
from cluster.kubernetes import daskcluster_manifest, kube_cluster
from cluster.slurm import slurm_cluster
from cluster.spec import ClusterSpec


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
            "PETASEG_TLS_CERT and PETASEG_TLS_KEY (PEM files), or give cluster.tls in the workflow"
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


def speaks_tls(address: str, timeout: float) -> bool:
    """Whether the server at ``address`` answers a TLS handshake (so a plain tcp:// client is
    the wrong kind, not a missing scheduler). The server's certificate is not checked here: this
    only tells the user which protocol to use."""
    import socket
    import ssl

    host, port = address.split("://", 1)[1].rsplit(":", 1)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, int(port)), timeout=min(timeout, 5.0)) as sock:
            with ctx.wrap_socket(sock, server_hostname=host):
                return True
    except ssl.SSLError as e:
        return "WRONG_VERSION_NUMBER" not in str(e) and "record layer" not in str(e)
    except (OSError, TimeoutError):
        return False


def connect(spec: ClusterSpec) -> Client:
    """A client for what ``spec`` names; for an embedded or deployed cluster the client owns it
    (``client.cluster``). Close both with ``close_client`` (or use ``open_client``)."""
    if spec.kind in ("local", "threads"):
        return Client(_local_cluster(spec))
    if spec.kind == "scheduler":
        return _scheduler_client(spec)
    if spec.kind == "slurm":
        return Client(slurm_cluster(**spec.slurm))
    k = dict(spec.kubernetes)
    minimum, maximum = k.pop("minimum", 0), k.pop("maximum", 16)
    manifest = daskcluster_manifest(n_workers=max(1, minimum), **k)
    return Client(kube_cluster(manifest, minimum, maximum))


def _local_cluster(spec: ClusterSpec) -> LocalCluster:
    """One single-threaded worker process per core (``local``), or one in-process worker with a
    thread per core (``threads``); the scheduler, its dashboard and the workers' HTTP servers
    listen on ``spec.bind`` only."""
    n = spec.workers or _local_size()
    processes = spec.kind == "local"
    return LocalCluster(
        n_workers=n if processes else 1,
        threads_per_worker=1 if processes else n,
        processes=processes,
        host=spec.bind,
        protocol="tcp",  # also for threads: an inproc:// scheduler has no loopback address
        dashboard_address=f"{spec.bind}:0" if spec.dashboard else None,
    )


def _scheduler_client(spec: ClusterSpec) -> Client:
    address = spec.address or ""
    security = None
    if spec.tls is not None:
        security = tls_security(spec.tls.ca, spec.tls.cert, spec.tls.key)
    elif address.startswith("tls://"):
        security = tls_security()
    try:
        return Client(address, timeout=spec.timeout, security=security)
    except (OSError, TimeoutError) as e:
        if address.startswith("tls://"):
            problem = tls_handshake_problem(address, security, spec.timeout)
            if problem:
                raise ClusterConnectError(
                    f"the Dask scheduler at {address} answers, but the TLS handshake fails: "
                    f"{problem}. Check that PETASEG_TLS_CA is the CA that signed the scheduler's "
                    "certificate and that PETASEG_TLS_CERT/PETASEG_TLS_KEY are signed by the CA "
                    "the scheduler trusts"
                ) from None
        elif speaks_tls(address, spec.timeout):
            tls_address = "tls://" + address.split("://", 1)[1]
            raise ClusterConnectError(
                f"the Dask scheduler at {address} speaks TLS: connect to {tls_address} with the "
                "certificate files (PETASEG_TLS_CA, PETASEG_TLS_CERT and PETASEG_TLS_KEY, or "
                "cluster.tls in the workflow)"
            ) from None
        raise ClusterConnectError(
            f"cannot reach the Dask scheduler at {address} within {spec.timeout:.0f} s "
            f"({e.__class__.__name__}: {e}). Start one (`dask scheduler`) and check host, port "
            "and firewall, or omit --cluster to run on an embedded LocalCluster"
        ) from None
