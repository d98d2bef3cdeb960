"""Compute connections for petaseg (dask/distributed only)."""

from .connect import ClusterConnectError, make_client, tls_security

__all__ = ["ClusterConnectError", "make_client", "tls_security"]
