"""Synthetic EM volumes with ground truth (neuron-like labels rendered as EM), so the demo and
the tests run without real data."""

from pipeline.synthetic.cells import voronoi
from pipeline.synthetic.volume import SyntheticVolume, make_volume, preview_png, voxel_size_for

__all__ = ["SyntheticVolume", "make_volume", "preview_png", "voronoi", "voxel_size_for"]
