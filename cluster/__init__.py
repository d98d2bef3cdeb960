"""Connecting to compute (dask/distributed and their deployers only): a ``ClusterSpec`` and the
``--cluster`` shorthands, one client lifecycle (``open_client``), TLS, SLURM and Kubernetes."""

from cluster.connect import connect, tls_security
from cluster.errors import ClusterConnectError, ClusterSetupError, ClusterSpecError
from cluster.kubernetes import daskcluster_manifest, kube_cluster
from cluster.lifecycle import close_client, open_client
from cluster.processes import ProcessCluster
from cluster.slurm import slurm_cluster, slurm_cluster_kwargs, slurm_job_script
from cluster.spec import ClusterSpec, TlsFiles, parse_cluster_option
from cluster.tls import make_tls_files

__all__ = [
    "ClusterConnectError",
    "ClusterSetupError",
    "ClusterSpec",
    "ClusterSpecError",
    "ProcessCluster",
    "TlsFiles",
    "close_client",
    "connect",
    "daskcluster_manifest",
    "kube_cluster",
    "make_tls_files",
    "open_client",
    "parse_cluster_option",
    "slurm_cluster",
    "slurm_cluster_kwargs",
    "slurm_job_script",
    "tls_security",
]
