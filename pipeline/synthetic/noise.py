"""Smooth random fields for the synthetic volumes (wall wiggle, texture, stain unevenness)."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi


def _kernel_gain(sigma: float) -> float:
    """Standard deviation of white noise after a 1D Gaussian of ``sigma``: normalising by this
    (not by the sample std) keeps small volumes from blowing up a nearly flat field."""
    if sigma <= 0:
        return 1.0
    x = np.arange(-int(4 * sigma + 1), int(4 * sigma + 1) + 1)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    w /= w.sum()
    return float(np.sqrt((w**2).sum()))


def smooth_noise(
    shape: tuple[int, ...],
    sigma: float,
    anisotropy: float,
    rng: np.random.Generator,
    coarse: int = 1,
) -> np.ndarray:
    """Gaussian-smoothed white noise with unit standard deviation (float32). ``sigma`` is in xy
    voxels, shrunk in z by the anisotropy. ``coarse`` > 1 draws it on a grid that many times
    coarser and zooms it up: same look for wide fields, far cheaper."""
    small = tuple(max(-(-s // coarse), 2) for s in shape)
    sigmas = (sigma / coarse / anisotropy, sigma / coarse, sigma / coarse)
    noise = rng.standard_normal(small, dtype=np.float32)
    noise = ndi.gaussian_filter(noise, sigmas, mode="wrap")
    noise /= np.float32(np.prod([_kernel_gain(s) for s in sigmas]))
    if small == tuple(shape):
        return noise
    zoom = [s / n for s, n in zip(shape, small, strict=True)]
    up = ndi.zoom(noise, zoom, order=1, grid_mode=True, mode="grid-wrap")
    return up[tuple(slice(0, s) for s in shape)]
