"""Synthetic label volumes with a boundary map, for the segmentation tests (from
``pipeline.synthetic.cells``)."""

from pipeline.synthetic.cells import voronoi

__all__ = ["voronoi"]
