"""The ``cluster:`` section of a workflow and the Dask client it yields."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cluster import (
    ClusterConnectError,
    daskcluster_manifest,
    kube_cluster,
    make_client,
    slurm_cluster,
    tls_security,
)
from pipeline.errors import ClusterError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TlsSpec(Strict):
    ca: str
    cert: str
    key: str


class SlurmSpec(Strict):
    queue: str | None = None
    account: str | None = None
    cores: int = Field(8, ge=1)
    memory: str = "64GB"
    gpus: int = Field(1, ge=0)
    walltime: str = "04:00:00"
    minimum_jobs: int = Field(0, ge=0)
    maximum_jobs: int = Field(16, ge=1)


class KubernetesSpec(Strict):
    name: str = "petaseg"
    image: str = "ghcr.io/petaseg/petaseg-worker:latest"
    gpus_per_worker: int = Field(1, ge=0)
    cpu: str = "8"
    memory: str = "64Gi"
    minimum: int = Field(0, ge=0)
    maximum: int = Field(16, ge=1)
    tls_secret: str | None = None


class ClusterSpec(Strict):
    """``kind``: local (embedded LocalCluster), threads, scheduler (an address), slurm, kubernetes."""

    kind: Literal["local", "threads", "scheduler", "slurm", "kubernetes"] = "local"
    workers: int | None = Field(None, ge=1, description="local/threads: number of workers")
    address: str | None = Field(None, description="scheduler: tcp://host:port or tls://host:port")
    tls: TlsSpec | None = None
    slurm: SlurmSpec | None = None
    kubernetes: KubernetesSpec | None = None
    require_gpu: bool = Field(False, description="refuse to run inference without GPU workers")

    @classmethod
    def from_cli(cls, text: str) -> ClusterSpec:
        """``--cluster`` shorthands: local, local:N, threads, tcp://..., tls://..."""
        text = text.strip()
        if text.startswith(("tcp://", "tls://")):
            return cls(kind="scheduler", address=text)
        if text.startswith("local"):
            return cls(kind="local", workers=int(text.split(":")[1]) if ":" in text else None)
        if text.startswith("threads"):
            return cls(kind="threads", workers=int(text.split(":")[1]) if ":" in text else None)
        raise ClusterError(
            f"--cluster {text!r}: use local, local:N, threads, tcp://host:port or tls://host:port"
        )


def client_for_spec(spec: ClusterSpec):
    """Connect (or start) what the spec names. The caller closes the client and its cluster."""
    from distributed import Client

    try:
        if spec.kind == "local":
            return make_client(f"local:{spec.workers}" if spec.workers else "local")
        if spec.kind == "threads":
            return make_client(f"threads:{spec.workers}" if spec.workers else "threads")
        if spec.kind == "scheduler":
            if not spec.address:
                raise ClusterError("cluster.address is required when cluster.kind is 'scheduler'")
            security = tls_security(spec.tls.ca, spec.tls.cert, spec.tls.key) if spec.tls else None
            return make_client(spec.address, security=security)
        if spec.kind == "slurm":
            s = spec.slurm or SlurmSpec()
            kw = s.model_dump(exclude={"minimum_jobs", "maximum_jobs"})
            return Client(slurm_cluster(s.minimum_jobs, s.maximum_jobs, **kw))
        k = spec.kubernetes or KubernetesSpec()
        manifest = daskcluster_manifest(
            name=k.name,
            image=k.image,
            n_workers=max(1, k.minimum),
            gpus_per_worker=k.gpus_per_worker,
            cpu=k.cpu,
            memory=k.memory,
            tls_secret=k.tls_secret,
        )
        return Client(kube_cluster(manifest, k.minimum, k.maximum))
    except ClusterConnectError as e:
        raise ClusterError(str(e)) from None
