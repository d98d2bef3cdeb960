"""Voronoi cells with a soft boundary map of their walls: a quick label volume of similar-sized
"neurons" for tests and benchmarks of the segmentation stages."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def voronoi(shape, spacing=12, seed=0, noise=0.1):
    """Voronoi cells around jittered grid points (similar sizes) and a soft boundary map of
    their walls. Wall voxels are 0 in the returned labels (ignored when scoring, as in gala)."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(spacing // 2, s, spacing) for s in shape], indexing="ij")
    jitter = rng.integers(-spacing // 4, spacing // 4 + 1, (grids[0].size, 3))
    pts = np.clip(np.stack([g.ravel() for g in grids], 1) + jitter, 0, np.array(shape) - 1)
    mask = np.ones(shape, bool)
    mask[tuple(pts.T)] = False
    _, idx = ndi.distance_transform_edt(mask, return_indices=True)
    lab = ndi.label(~mask)[0][tuple(idx)]
    wall = np.zeros(shape, bool)
    for d in range(3):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[d], b[d] = slice(1, None), slice(None, -1)
        wall[tuple(a)] |= lab[tuple(a)] != lab[tuple(b)]
    bnd = ndi.gaussian_filter(wall.astype(np.float32), 1.0) * 2.5
    bnd += rng.normal(0, noise, shape).astype(np.float32)
    return np.where(wall, 0, lab), np.clip(bnd, 0, 1).astype(np.float32)
