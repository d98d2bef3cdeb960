"""Helpers the tests share: synthetic volumes and labels, tiny networks, real Dask processes."""
