"""Small synthetic EM-like volumes for the export, proofreading and correction tests: Voronoi
cells (neurite-like labels) with a dark membrane between them, written to Zarr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from pipeline.io.volume import create_volume


def voronoi_labels(shape=(40, 72, 80), n=24, seed=0, anisotropy=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Cells of ``n`` random seeds, ids 1..n (uint64), with 0 where two cells meet."""
    rng = np.random.default_rng(seed)
    seeds = np.zeros(shape, np.int64)
    pts = np.stack([rng.integers(0, s, n) for s in shape], axis=1)
    seeds[tuple(pts.T)] = np.arange(1, n + 1)
    _, idx = ndimage.distance_transform_edt(seeds == 0, sampling=anisotropy, return_indices=True)
    labels = seeds[tuple(idx)].astype(np.uint64)
    edge = np.zeros(shape, bool)
    for ax in range(3):
        d = np.diff(labels.astype(np.int64), axis=ax) != 0
        sl = [slice(None)] * 3
        sl[ax] = slice(0, -1)
        edge[tuple(sl)] |= d
    labels[edge] = 0
    return labels


def image_for(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Bright cells, dark membranes, some noise (uint8)."""
    rng = np.random.default_rng(seed)
    img = np.where(labels > 0, 170.0, 60.0) + rng.normal(0, 12, labels.shape)
    img = ndimage.gaussian_filter(img, 0.7)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_zarr(path: Path, data: np.ndarray, voxel_size=(10, 10, 10), chunks=(32, 32, 32)) -> str:
    url = str(path)
    vol = create_volume(url, data.shape, data.dtype, voxel_size, chunks=chunks)
    vol.write(vol.roi, data)
    return url


def neurons_and_fragments(shape=(32, 48, 48), n_neurons=6, n_fragments=60, seed=0):
    """(neurons, fragments, boundary): Voronoi neurons (1..n, no gaps) cut into fragments by a
    finer Voronoi; fragment ids are unique (> 0); the boundary map is 0.9 on faces between
    neurons and 0.1 on faces between fragments of one neuron (float32 in [0, 1])."""
    rng = np.random.default_rng(seed)

    def cells(n):
        seeds = np.zeros(shape, np.int64)
        pts = np.stack([rng.integers(0, s, n) for s in shape], axis=1)
        seeds[tuple(pts.T)] = np.arange(1, n + 1)
        _, idx = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
        return seeds[tuple(idx)]

    neurons = cells(n_neurons)
    fine = cells(n_fragments)
    pair = neurons * (n_fragments + 1) + fine
    _, fragments = np.unique(pair, return_inverse=True)
    fragments = (fragments.reshape(shape) + 1).astype(np.uint64) * 7  # sparse, unordered ids
    boundary = np.zeros(shape, np.float32)
    for ax in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[ax], hi[ax] = slice(0, -1), slice(1, None)
        frag_face = fragments[tuple(lo)] != fragments[tuple(hi)]
        neuron_face = neurons[tuple(lo)] != neurons[tuple(hi)]
        value = np.where(neuron_face, 0.9, np.where(frag_face, 0.1, 0.0)).astype(np.float32)
        boundary[tuple(lo)] = np.maximum(boundary[tuple(lo)], value)
        boundary[tuple(hi)] = np.maximum(boundary[tuple(hi)], value)
    return neurons.astype(np.uint64), fragments, boundary


def segmentation_with_errors(seed=0, shape=(40, 64, 64), n_neurons=24, n_fragments=320):
    """A labelled synthetic case for error correction: (neurons, fragments, boundary, raw,
    lut_fragments, lut_segments). The table is the truth with errors put in: about half the
    neurons cut in two along a random plane (split errors) and a few touching neurons joined
    (merge errors). The boundary map is noisy, the raw image dark on membranes."""
    neurons, fragments, boundary = neurons_and_fragments(shape, n_neurons, n_fragments, seed)
    rng = np.random.default_rng(seed + 100)
    noisy = np.clip(boundary + rng.normal(0, 0.15, shape), 0, 1).astype(np.float32)
    raw = np.clip(
        180 - 120 * ndimage.gaussian_filter(boundary, 0.7) + rng.normal(0, 15, shape), 0, 255
    )
    ids = np.unique(fragments)
    where = ndimage.center_of_mass(np.ones(shape), fragments, ids)
    neuron_of = np.array([neurons[fragments == f][0] for f in ids], np.int64)
    group = neuron_of.copy()
    next_group = group.max() + 1
    for n in np.unique(neuron_of):
        members = np.flatnonzero(neuron_of == n)
        if len(members) < 2 or rng.random() < 0.5:
            continue
        normal = rng.normal(size=3)
        side = np.array([np.dot(where[m], normal) for m in members])
        cut = side > np.median(side)
        if 0 < cut.sum() < len(members):
            group[members[cut]] = next_group
            next_group += 1
    # merge errors: join a few groups of touching neurons
    pairs = set()
    for ax in range(3):
        a = np.moveaxis(neurons, ax, 0)
        d = a[1:] != a[:-1]
        pairs |= set(zip(a[1:][d].tolist(), a[:-1][d].tolist(), strict=True))
    pairs = sorted({(min(p), max(p)) for p in pairs})
    for k in rng.choice(len(pairs), size=3, replace=False):
        na, nb = pairs[k]
        ga, gb = group[neuron_of == na][0], group[neuron_of == nb][0]
        group[group == gb] = ga
    seg = np.zeros(len(ids), np.uint64)
    for g in np.unique(group):
        seg[group == g] = ids[group == g].min()
    return neurons, fragments, noisy, raw.astype(np.uint8), ids.astype(np.uint64), seg
