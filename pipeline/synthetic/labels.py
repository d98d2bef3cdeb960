"""Dense neuron-like label volumes: neurite seeds grown into space-filling objects.

A Voronoi tiling from the seeds, looked up through a smooth warp of space, gives wiggly
walls: every voxel gets an id (no background, as in dense EM ground truth) and objects follow
their skeletons (elongated, branching tubes). Pieces the warp cuts off are mended afterwards, so
each id is exactly one connected object.
"""

from __future__ import annotations

import cc3d
import numpy as np
import scipy.ndimage as ndi

from pipeline.errors import InputError
from pipeline.synthetic.noise import smooth_noise
from pipeline.synthetic.trees import Shape, TreeParams, neurite_seeds


def _warp_field(
    shape: Shape, wiggle: float, anisotropy: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Per-axis voxel displacements, smooth enough that the warp folds nothing (a gentle bend of
    space keeps every object in one piece)."""
    scale = (wiggle / anisotropy, wiggle, wiggle)
    return [s * smooth_noise(shape, 6.0, anisotropy, rng, coarse=2) for s in scale]


def grow_labels(
    seeds: np.ndarray, anisotropy: float, wiggle: float, rng: np.random.Generator
) -> np.ndarray:
    """Fill the volume from the seeds: each voxel takes the id of the nearest seed (a Voronoi
    tiling, nearest in physical units), looked up at a smoothly displaced position so the walls
    between objects bend like membranes instead of running flat. ``wiggle`` is the displacement
    in xy voxels."""
    nearest = ndi.distance_transform_edt(
        seeds == 0,
        sampling=(anisotropy, 1.0, 1.0),
        return_distances=False,
        return_indices=True,
    )
    tiled = seeds[tuple(nearest)]
    del nearest
    grid = np.indices(seeds.shape, dtype=np.int32, sparse=True)
    warped = tuple(
        np.clip(np.rint(g + d), 0, n - 1).astype(np.intp)
        for g, d, n in zip(
            grid, _warp_field(seeds.shape, wiggle, anisotropy, rng), seeds.shape, strict=True
        )
    )
    return tiled[warped].astype(np.uint64)


def _absorb_small(labels: np.ndarray, min_size: int) -> bool:
    """Merge each connected piece smaller than ``min_size`` into the neighbour it touches most.
    Returns whether anything changed. Merging into a touching object keeps that object
    connected."""
    pieces = cc3d.connected_components(labels, connectivity=6, out_dtype=np.uint64)
    stats = cc3d.statistics(pieces)
    small = np.flatnonzero(stats["voxel_counts"] < min_size)
    small = small[small > 0]
    changed = False
    for piece in small:
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in stats["bounding_boxes"][piece])
        mask = pieces[box] == piece
        ring = ndi.binary_dilation(mask) & ~mask
        crop = labels[box]
        own = crop[mask][0]
        around = crop[ring & (crop != own)]
        if around.size == 0:
            continue
        values, counts = np.unique(around, return_counts=True)
        crop[mask] = values[np.argmax(counts)]
        changed = True
    return changed


def make_connected(labels: np.ndarray, min_size: int = 20) -> np.ndarray:
    """One 6-connected component per id, ids 1..N in scan order (cc3d numbering). Pieces cut off
    from their object become objects of their own unless tiny (those join a neighbour)."""
    for _ in range(4):
        if not _absorb_small(labels, min_size):
            break
    return cc3d.connected_components(labels, connectivity=6, out_dtype=np.uint64)


def make_neurons(
    shape: Shape = (64, 128, 128),
    seed: int = 0,
    anisotropy: float = 1.0,
    radius: float = 6.0,
    branch_prob: float = 0.004,
    wiggle: float = 2.0,
    params: TreeParams | None = None,
) -> np.ndarray:
    """Dense neuron-like labels (uint64, ids 1..N, every voxel labelled, each id one
    6-connected component). ``radius`` is the mean neurite radius in xy voxels (smaller: more,
    thinner objects); ``anisotropy`` is the z voxel size over the xy one."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 8:
        raise InputError(
            f"synthetic volume shape {shape}: give three sizes (z, y, x) of at least 8 voxels"
        )
    if not anisotropy > 0 or not radius >= 1:
        raise InputError(
            f"synthetic volume: anisotropy ({anisotropy}) must be > 0 and radius ({radius}) >= 1"
        )
    rng = np.random.default_rng(seed)
    params = params or TreeParams(radius=radius, branch_prob=branch_prob)
    seeds = neurite_seeds(shape, anisotropy, params, rng)
    labels = grow_labels(seeds, anisotropy, wiggle, rng)
    return make_connected(labels)
