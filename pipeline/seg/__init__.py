"""Segmentation algorithms on numpy arrays (one block or one graph): no volumes, no Dask."""
