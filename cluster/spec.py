"""What compute to use, as data: a ``ClusterSpec`` goes straight to ``LocalCluster``/``Client``
(``cluster.connect``); ``parse_cluster_option`` reads the ``--cluster`` shorthands into one."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from cluster.errors import ClusterSpecError

KINDS = ("local", "threads", "scheduler", "slurm", "kubernetes")
BIND_ENV = "PETASEG_BIND"  # where embedded clusters listen unless a spec says (petaseg --bind)
SHORTHANDS = "local, local:N, threads, threads:N, tcp://host:port or tls://host:port"
_ADDRESS = re.compile(r"(tcp|tls)://[^\s/:]+:\d+")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a TLS connection: the CA that signed the scheduler's certificate, and this
    client's certificate and key."""

    ca: str
    cert: str
    key: str


@dataclass(frozen=True)
class ClusterSpec:
    """``kind``: ``local`` (an embedded LocalCluster, one single-threaded worker process per
    core, or ``workers``), ``threads`` (in-process threads), ``scheduler`` (a running scheduler at
    ``address``), ``slurm`` (dask-jobqueue, ``slurm`` holds its options) or ``kubernetes``
    (dask-kubernetes operator, ``kubernetes`` holds its options). Servers of embedded clusters
    (scheduler, dashboard, workers) listen on ``bind`` only."""

    kind: str = "local"
    workers: int | None = None
    address: str | None = None
    tls: TlsFiles | None = None
    slurm: dict[str, Any] = field(default_factory=dict)
    kubernetes: dict[str, Any] = field(default_factory=dict)
    dashboard: bool = True
    bind: str = field(default_factory=lambda: default_bind())
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ClusterSpecError(f"cluster kind {self.kind!r}: use one of {', '.join(KINDS)}")
        if self.workers is not None and (
            not isinstance(self.workers, int) or isinstance(self.workers, bool) or self.workers < 1
        ):
            raise ClusterSpecError(
                f"cluster workers {self.workers!r}: give a positive number of workers"
            )
        if self.kind == "scheduler":
            if not self.address or not _ADDRESS.fullmatch(self.address):
                raise ClusterSpecError(
                    f"scheduler address {self.address!r}: use tcp://host:port or tls://host:port"
                )


def default_bind() -> str:
    """Where embedded clusters listen: ``$PETASEG_BIND`` (set by ``petaseg --bind``), else
    127.0.0.1, so no dashboard or worker is reachable from the network unless asked for."""
    return os.environ.get(BIND_ENV) or "127.0.0.1"


def _worker_count(text: str, option: str) -> int | None:
    if ":" not in text:
        return None
    count = text.split(":", 1)[1]
    if not count.isdigit() or int(count) < 1:
        raise ClusterSpecError(
            f"--cluster {option!r}: the number of workers must be a positive integer, "
            f"e.g. {text.split(':', 1)[0]}:2"
        )
    return int(count)


def parse_cluster_option(text: str | None) -> ClusterSpec:
    """A ``--cluster`` value: local, local:N, threads, threads:N, tcp://host:port or
    tls://host:port (None means local)."""
    option = (text or "local").strip()
    if option.startswith(("tcp://", "tls://")):
        return ClusterSpec(kind="scheduler", address=option)
    kind = option.split(":", 1)[0]
    if kind not in ("local", "threads"):
        raise ClusterSpecError(f"--cluster {option!r} not understood: use {SHORTHANDS}")
    return ClusterSpec(kind=kind, workers=_worker_count(option, option))
