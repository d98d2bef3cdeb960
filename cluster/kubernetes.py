"""Kubernetes through the dask-kubernetes operator: a ``DaskCluster`` resource with GPU workers.

``daskcluster_manifest`` builds the resource (apply it with kubectl, or pass it to
``kube_cluster``); workers ask for ``nvidia.com/gpu`` and advertise ``GPU`` to Dask.
"""

from __future__ import annotations

from typing import Any

DEFAULT_IMAGE = "ghcr.io/petaseg/petaseg-worker:latest"


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
    env_list = [{"name": k, "value": v} for k, v in (env or {}).items()]
    limits: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpus_per_worker:
        limits["nvidia.com/gpu"] = gpus_per_worker
    protocol = "tls" if tls_secret else "tcp"
    tls_args: list[str] = []
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if tls_secret:
        tls_args = [
            "--tls-ca-file",
            "/tls/ca.pem",
            "--tls-cert",
            "/tls/cert.pem",
            "--tls-key",
            "/tls/key.pem",
        ]
        volumes = [{"name": "tls", "secret": {"secretName": tls_secret}}]
        mounts = [{"name": "tls", "mountPath": "/tls", "readOnly": True}]
    worker_args = [
        "dask",
        "worker",
        "--name",
        "$(DASK_WORKER_NAME)",
        "--nthreads",
        cpu,
        "--dashboard-address",
        "8788",
        *tls_args,
    ]
    if gpus_per_worker:
        worker_args += ["--resources", f"GPU={gpus_per_worker}"]
    scheduler_args = ["dask", "scheduler", "--host", "0.0.0.0", "--protocol", protocol, *tls_args]
    return {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": {"name": name},
        "spec": {
            "worker": {
                "replicas": n_workers,
                "spec": {
                    "containers": [
                        {
                            "name": "worker",
                            "image": image,
                            "args": worker_args,
                            "env": env_list,
                            "resources": {"limits": limits},
                            "volumeMounts": mounts,
                            "ports": [
                                {"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}
                            ],
                        }
                    ],
                    "volumes": volumes,
                },
            },
            "scheduler": {
                "spec": {
                    "containers": [
                        {
                            "name": "scheduler",
                            "image": image,
                            "args": scheduler_args,
                            "env": env_list,
                            "resources": {"limits": {"cpu": "2", "memory": "8Gi"}},
                            "volumeMounts": mounts,
                            "ports": [
                                {"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
                                {
                                    "name": "http-dashboard",
                                    "containerPort": 8787,
                                    "protocol": "TCP",
                                },
                            ],
                            "readinessProbe": {
                                "httpGet": {"port": "http-dashboard", "path": "/health"},
                                "initialDelaySeconds": 5,
                                "periodSeconds": 10,
                            },
                        }
                    ],
                    "volumes": volumes,
                },
                "service": {
                    "type": "ClusterIP",
                    "selector": {"dask.org/cluster-name": name, "dask.org/component": "scheduler"},
                    "ports": [
                        {
                            "name": "tcp-comm",
                            "protocol": "TCP",
                            "port": 8786,
                            "targetPort": "tcp-comm",
                        },
                        {
                            "name": "http-dashboard",
                            "protocol": "TCP",
                            "port": 8787,
                            "targetPort": "http-dashboard",
                        },
                    ],
                },
            },
        },
    }


def kube_cluster(manifest: dict[str, Any], minimum: int = 0, maximum: int = 16):
    """Create the cluster from a manifest via the operator and scale it with the load."""
    from dask_kubernetes.operator import KubeCluster

    cluster = KubeCluster(custom_cluster_spec=manifest)
    cluster.adapt(minimum=minimum, maximum=maximum)
    return cluster
