"""Kubernetes through the dask-kubernetes operator: a ``DaskCluster`` resource with GPU workers.

``daskcluster_manifest`` builds the resource (apply it with kubectl, or pass it to
``kube_cluster``); workers ask for ``nvidia.com/gpu`` and advertise ``GPU`` to Dask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_IMAGE = "ghcr.io/petaseg/petaseg-worker:latest"


TLS_ARGS = [
    "--tls-ca-file",
    "/tls/ca.pem",
    "--tls-cert",
    "/tls/cert.pem",
    "--tls-key",
    "/tls/key.pem",
]
WORKER_DASHBOARD = 8788
SCHEDULER_PORTS = {"tcp-comm": 8786, "http-dashboard": 8787}


def daskcluster_manifest(
    name: str = "petaseg",
    image: str = DEFAULT_IMAGE,
    n_workers: int = 2,
    gpus_per_worker: int = 1,
    cpu: str = "8",
    memory: str = "64Gi",
    env: dict[str, str] | None = None,
    tls_secret: str | None = None,
) -> dict[str, Any]:
    """A ``kubernetes.dask.org/v1`` DaskCluster. With ``tls_secret`` the scheduler and workers
    mount that secret (ca.pem, cert.pem, key.pem) and speak TLS only."""
    pods = PodSettings(image, [{"name": k, "value": v} for k, v in (env or {}).items()], tls_secret)
    return {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": {"name": name},
        "spec": {
            "worker": {
                "replicas": n_workers,
                "spec": worker_pod(pods, gpus_per_worker, cpu, memory),
            },
            "scheduler": {"spec": scheduler_pod(pods), "service": scheduler_service(name)},
        },
    }


@dataclass(frozen=True)
class PodSettings:
    """What the scheduler's and the workers' pods share: the image, the environment, and the
    secret with the TLS files (None: plain TCP)."""

    image: str
    env: list[dict[str, str]]
    tls_secret: str | None

    def tls_args(self) -> list[str]:
        return list(TLS_ARGS) if self.tls_secret else []

    def volumes(self) -> list[dict[str, Any]]:
        return (
            [{"name": "tls", "secret": {"secretName": self.tls_secret}}] if self.tls_secret else []
        )

    def container(
        self, name: str, args: list[str], limits: dict[str, Any], ports: dict[str, int]
    ) -> dict[str, Any]:
        mounts = [{"name": "tls", "mountPath": "/tls", "readOnly": True}] if self.tls_secret else []
        return {
            "name": name,
            "image": self.image,
            "args": args,
            "env": self.env,
            "resources": {"limits": limits},
            "volumeMounts": mounts,
            "ports": [
                {"name": port, "containerPort": number, "protocol": "TCP"}
                for port, number in ports.items()
            ],
        }


def worker_pod(pods: PodSettings, gpus: int, cpu: str, memory: str) -> dict[str, Any]:
    """The workers' pod: ``cpu`` threads each, and with ``gpus`` the cards asked of Kubernetes
    and advertised to Dask as the ``GPU`` resource."""
    limits: dict[str, Any] = {"cpu": cpu, "memory": memory}
    args = ["dask", "worker", "--name", "$(DASK_WORKER_NAME)", "--nthreads", cpu]
    args += ["--dashboard-address", str(WORKER_DASHBOARD), *pods.tls_args()]
    if gpus:
        limits["nvidia.com/gpu"] = gpus
        args += ["--resources", f"GPU={gpus}"]
    ports = {"http-dashboard": WORKER_DASHBOARD}
    return {
        "containers": [pods.container("worker", args, limits, ports)],
        "volumes": pods.volumes(),
    }


def scheduler_pod(pods: PodSettings) -> dict[str, Any]:
    """The scheduler's pod, ready once its dashboard answers."""
    protocol = "tls" if pods.tls_secret else "tcp"
    args = ["dask", "scheduler", "--host", "0.0.0.0", "--protocol", protocol, *pods.tls_args()]
    container = pods.container("scheduler", args, {"cpu": "2", "memory": "8Gi"}, SCHEDULER_PORTS)
    container["readinessProbe"] = {
        "httpGet": {"port": "http-dashboard", "path": "/health"},
        "initialDelaySeconds": 5,
        "periodSeconds": 10,
    }
    return {"containers": [container], "volumes": pods.volumes()}


def scheduler_service(name: str) -> dict[str, Any]:
    """The service in front of the scheduler: its comm port and its dashboard."""
    return {
        "type": "ClusterIP",
        "selector": {"dask.org/cluster-name": name, "dask.org/component": "scheduler"},
        "ports": [
            {"name": port, "protocol": "TCP", "port": number, "targetPort": port}
            for port, number in SCHEDULER_PORTS.items()
        ],
    }


def kube_cluster(manifest: dict[str, Any], minimum: int = 0, maximum: int = 16):
    """Create the cluster from a manifest via the operator and scale it with the load."""
    from dask_kubernetes.operator import KubeCluster

    cluster = KubeCluster(custom_cluster_spec=manifest)
    cluster.adapt(minimum=minimum, maximum=maximum)
    return cluster
