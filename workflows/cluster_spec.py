"""The ``cluster:`` section of a workflow, validated, and the ``cluster.ClusterSpec`` it names."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cluster import ClusterSpec, TlsFiles, parse_cluster_option


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TlsSpec(Strict):
    ca: str
    cert: str
    key: str


class SlurmSpec(Strict):
    """One Dask worker per SLURM job (``cluster.slurm_cluster_kwargs`` says what each becomes)."""

    queue: str | None = None
    account: str | None = None
    cores: int = Field(8, ge=1)
    memory: str = "64GB"
    gpus: int = Field(1, ge=0)
    walltime: str = "04:00:00"
    minimum_jobs: int = Field(0, ge=0)
    maximum_jobs: int = Field(16, ge=1)
    python: str | None = Field(None, description="the Python jobs run (default: this one)")
    env: list[str] = Field(
        [], description="job script lines before the worker starts (export ..., module load ...)"
    )
    local_directory: str | None = Field(None, description="the workers' scratch folder")
    log_directory: str | None = Field(None, description="the jobs' output files")
    interface: str | None = Field(
        None, description="network interface of scheduler and workers (ib0; lo on one machine)"
    )
    dashboard_address: str = Field(":8787", description="the scheduler's dashboard")
    worker_options: list[str] = Field(
        [], description="more `dask worker` options, e.g. --dashboard-address 127.0.0.1:0"
    )


class KubernetesSpec(Strict):
    name: str = "petaseg"
    image: str = "ghcr.io/petaseg/petaseg-worker:latest"
    gpus_per_worker: int = Field(1, ge=0)
    cpu: str = "8"
    memory: str = "64Gi"
    minimum: int = Field(0, ge=0)
    maximum: int = Field(16, ge=1)
    tls_secret: str | None = None


class ClusterSection(Strict):
    """``kind``: local (embedded LocalCluster), threads, scheduler (an address), slurm, kubernetes."""

    kind: Literal["local", "threads", "scheduler", "slurm", "kubernetes"] = "local"
    workers: int | None = Field(None, ge=1, description="local/threads: number of workers")
    address: str | None = Field(
        None,
        pattern=r"^(tcp|tls)://[^\s/:]+:\d+$",
        description="scheduler: tcp://host:port or tls://host:port",
    )
    tls: TlsSpec | None = None
    slurm: SlurmSpec | None = None
    kubernetes: KubernetesSpec | None = None
    require_gpu: bool = Field(False, description="refuse to run inference without GPU workers")
    bind: str | None = Field(
        None,
        description="local/threads: address the scheduler, dashboard and workers listen on "
        "(default 127.0.0.1, or petaseg --bind)",
    )

    @model_validator(mode="after")
    def _scheduler_has_an_address(self) -> ClusterSection:
        if self.kind == "scheduler" and not self.address:
            raise ValueError("cluster.address is required when cluster.kind is 'scheduler'")
        return self

    @classmethod
    def from_option(cls, text: str, tls: TlsSpec | None = None) -> ClusterSection:
        """A ``--cluster`` value (local, local:N, threads, tcp://..., tls://...)."""
        spec = parse_cluster_option(text)
        return cls(kind=spec.kind, workers=spec.workers, address=spec.address, tls=tls)

    def spec(self) -> ClusterSpec:
        """The ``cluster.ClusterSpec`` this section names (what ``cluster.open_client`` takes)."""
        tls = TlsFiles(self.tls.ca, self.tls.cert, self.tls.key) if self.tls else None
        slurm = (self.slurm or SlurmSpec()).model_dump() if self.kind == "slurm" else {}
        kube = (
            (self.kubernetes or KubernetesSpec()).model_dump() if self.kind == "kubernetes" else {}
        )
        extra = {"bind": self.bind} if self.bind else {}
        return ClusterSpec(
            **extra,
            kind=self.kind,
            workers=self.workers,
            address=self.address,
            tls=tls,
            slurm=slurm,
            kubernetes=kube,
        )
