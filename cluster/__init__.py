"""Compute connections for petaseg (dask/distributed and their deployers only)."""

from .connect import ClusterConnectError, make_client, tls_security
from .kubernetes import daskcluster_manifest, kube_cluster
from .slurm import slurm_cluster, slurm_cluster_kwargs, slurm_job_script
from .tls import make_tls_files

__all__ = [
    "ClusterConnectError",
    "daskcluster_manifest",
    "kube_cluster",
    "make_client",
    "make_tls_files",
    "slurm_cluster",
    "slurm_cluster_kwargs",
    "slurm_job_script",
    "tls_security",
]
