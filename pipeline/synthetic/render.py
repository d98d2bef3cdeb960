"""Render dense labels as EM-like raw data: dark membranes on object boundaries, a mildly varying
cytoplasm per object, dark mitochondria-like ellipsoids and vesicle clusters, stain unevenness,
blur and noise. The intensity ranges follow FIB-SEM of fly medulla (FlyEM, 10 nm): membranes
around 90-100, cytoplasm around 130-180 out of 255.

Everything is in voxels of the label volume; ``anisotropy`` (z voxel size over xy) squeezes
physical lengths in z so thick sections look right.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import edt
import numpy as np
import scipy.ndimage as ndi

from pipeline.errors import InputError
from pipeline.synthetic.noise import smooth_noise


@dataclass
class RenderParams:
    """Intensities out of 255 and lengths in xy voxels."""

    cytoplasm: float = 155.0  # mean object interior
    cytoplasm_sd: float = 12.0  # spread of the per-object mean
    membrane: float = 90.0  # darkening at the centre of a membrane
    membrane_width: float = 1.5  # visible membrane thickness
    texture: float = 12.0  # fine intracellular texture
    stain: float = 7.0  # slow stain unevenness across the volume
    mito_per_mvox: float = 60.0  # mitochondria per million voxels
    mito_dark: float = 70.0  # darkening of a mitochondrion's matrix
    vesicle_clusters_per_mvox: float = 25.0
    vesicle_dark: float = 45.0
    blur: float = 1.2
    noise: float = 5.0


def _walls(labels: np.ndarray, axis: int) -> np.ndarray:
    """Voxels whose neighbour along ``axis`` carries another label (both sides marked)."""
    lo = [slice(None)] * labels.ndim
    hi = [slice(None)] * labels.ndim
    lo[axis], hi[axis] = slice(None, -1), slice(1, None)
    differ = labels[tuple(lo)] != labels[tuple(hi)]
    out = np.zeros(labels.shape, dtype=bool)
    out[tuple(lo)] |= differ
    out[tuple(hi)] |= differ
    return out


def boundary_gt(labels: np.ndarray) -> np.ndarray:
    """The ideal boundary map: 1 where a 6-neighbour carries another label, else 0 (both sides
    of a wall are marked, as affinity/boundary training targets expect)."""
    out = np.zeros(labels.shape, dtype=bool)
    for axis in range(labels.ndim):
        out |= _walls(labels, axis)
    return out.astype(np.float32)


def _sigma(sigma: float, anisotropy: float) -> tuple[float, float, float]:
    return (sigma / anisotropy, sigma, sigma)


def _membranes(labels: np.ndarray, width: float, anisotropy: float) -> np.ndarray:
    """Membrane darkness in 0..1: the boundary map blurred to the requested thickness. A wall
    between sections is a thin membrane seen through a thick section, so it darkens the
    section only by its share of the thickness (1/anisotropy): ssTEM's grey smears."""
    walls = (_walls(labels, 1) | _walls(labels, 2)).astype(np.float32)
    walls = np.maximum(walls, _walls(labels, 0) * np.float32(min(1.0, 1.5 / anisotropy)))
    soft = ndi.gaussian_filter(walls, _sigma(max(width - 1.0, 0.3) * 0.6, anisotropy))
    level = float(soft[walls > 0].mean()) if walls.any() else 1.0
    return np.clip(soft / max(level, 1e-6), 0.0, 1.0)


def _ellipsoid_box(
    centre: np.ndarray, semi: np.ndarray, axis: np.ndarray, shape: tuple[int, ...], aniso: float
) -> tuple[tuple[slice, ...], np.ndarray]:
    """Crop around an ellipsoid (physical semi-axes, long axis ``axis``) and its inside test."""
    reach = float(semi.max())
    half = np.ceil([reach / aniso, reach, reach]).astype(int) + 1
    lo = np.maximum(centre - half, 0)
    hi = np.minimum(centre + half + 1, shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    zz, yy, xx = np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi, strict=True)), indexing="ij")
    rel = np.stack([(zz - centre[0]) * aniso, yy - centre[1], xx - centre[2]], axis=-1)
    along = rel @ axis
    across = np.sqrt(np.maximum((rel**2).sum(-1) - along**2, 0.0))
    inside = (along / semi[0]) ** 2 + (across / semi[1]) ** 2
    return box, inside


def _pick_interior(
    depth: np.ndarray, min_depth: float, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` random voxels at least ``min_depth`` inside their object."""
    candidates = np.flatnonzero(depth >= min_depth)
    if candidates.size == 0 or count == 0:
        return np.zeros((0, 3), dtype=int)
    flat = rng.choice(candidates, size=count, replace=True)
    return np.stack(np.unravel_index(flat, depth.shape), axis=1)


@dataclass
class OrganelleCanvas:
    """Where organelles are drawn: the labels, each voxel's distance to its object's wall
    (``depth``), the darkening painted so far (``dark``), the z anisotropy and the random stream."""

    labels: np.ndarray
    depth: np.ndarray
    dark: np.ndarray
    aniso: float
    rng: np.random.Generator


def _mitochondria(canvas: OrganelleCanvas, p: RenderParams) -> None:
    """Elongated dark ellipsoids with a darker rim (the double membrane), kept inside one object
    and off its membrane."""
    labels, depth, dark = canvas.labels, canvas.depth, canvas.dark
    aniso, rng = canvas.aniso, canvas.rng
    count = rng.poisson(p.mito_per_mvox * labels.size / 1e6)
    for centre in _pick_interior(depth, 3.5, count, rng):
        room = float(depth[tuple(centre)])
        short = min(rng.uniform(3.0, 7.0), room - 0.5)
        semi = np.array([short * rng.uniform(1.5, 3.5), short])
        axis = rng.standard_normal(3)
        axis /= np.linalg.norm(axis)
        box, inside = _ellipsoid_box(centre, semi, axis, labels.shape, aniso)
        own = (labels[box] == labels[tuple(centre)]) & (depth[box] >= 1.0)
        body = (inside <= 1.0) & own
        rim = body & (inside > (1 - 1.2 / short) ** 2)
        value = np.where(rim, 1.35, 1.0) * p.mito_dark
        dark[box] = np.where(body, np.maximum(dark[box], value), dark[box])


def _ring_offsets(radius: float, anisotropy: float) -> np.ndarray:
    """Voxel offsets of a hollow sphere: a vesicle's dark membrane around a lighter lumen."""
    r = int(np.ceil(radius))
    rz = max(int(np.ceil(radius / anisotropy)), 0)
    zz, yy, xx = np.mgrid[-rz : rz + 1, -r : r + 1, -r : r + 1]
    dist = np.sqrt((zz * anisotropy) ** 2 + yy**2 + xx**2)
    shell = (dist <= radius) & (dist > radius - 1.0)
    return np.stack([zz[shell], yy[shell], xx[shell]], axis=1)


def _vesicles(canvas: OrganelleCanvas, p: RenderParams) -> None:
    """Clusters of small dark rings (synaptic vesicles, ~40 nm) inside one object."""
    labels, depth, dark = canvas.labels, canvas.depth, canvas.dark
    aniso, rng = canvas.aniso, canvas.rng
    count = rng.poisson(p.vesicle_clusters_per_mvox * labels.size / 1e6)
    ring = _ring_offsets(1.8, aniso)
    shape = np.array(labels.shape)
    for centre in _pick_interior(depth, 4.0, count, rng):
        own_id = labels[tuple(centre)]
        spread = rng.uniform(3.0, 7.0)
        offsets = rng.normal(0.0, spread, (rng.integers(8, 30), 3)) / (aniso, 1.0, 1.0)
        centres = np.round(centre + offsets).astype(int)
        vox = (centres[:, None, :] + ring[None]).reshape(-1, 3)
        vox = vox[np.all((vox >= 0) & (vox < shape), axis=1)]
        z, y, x = vox.T
        inside = labels[z, y, x] == own_id
        z, y, x = z[inside], y[inside], x[inside]
        dark[z, y, x] = np.maximum(dark[z, y, x], p.vesicle_dark)


def render_em(
    labels: np.ndarray,
    seed: int = 0,
    anisotropy: float = 1.0,
    noise: float | None = None,
    membrane_width: float | None = None,
    params: RenderParams | None = None,
) -> np.ndarray:
    """EM-like uint8 raw data for a dense label volume (membranes dark, cytoplasm light)."""
    if labels.ndim != 3 or labels.size == 0:
        raise InputError(
            f"render_em: labels must be a non-empty 3D array (z, y, x), got {labels.shape}"
        )
    p = replace(params or RenderParams())
    if noise is not None:
        p.noise = noise
    if membrane_width is not None:
        p.membrane_width = membrane_width
    rng = np.random.default_rng(seed)
    ids = np.unique(labels)
    tone = rng.normal(p.cytoplasm, p.cytoplasm_sd, ids.size).astype(np.float32)
    raw = tone[np.searchsorted(ids, labels)]
    raw += p.texture * smooth_noise(labels.shape, 1.6, anisotropy, rng)
    raw += p.stain * smooth_noise(labels.shape, 12.0, anisotropy, rng, coarse=4)
    depth = edt.edt(labels, anisotropy=(anisotropy, 1.0, 1.0), black_border=False, parallel=1)
    depth = np.minimum(depth, np.float32(1e4))  # a single-object volume has no walls: inf
    dark = np.zeros(labels.shape, dtype=np.float32)
    canvas = OrganelleCanvas(labels, depth, dark, anisotropy, rng)
    _mitochondria(canvas, p)
    _vesicles(canvas, p)
    raw -= ndi.gaussian_filter(dark, _sigma(0.6, anisotropy))
    raw -= p.membrane * _membranes(labels, p.membrane_width, anisotropy)
    raw = ndi.gaussian_filter(raw, _sigma(p.blur, anisotropy))
    raw += rng.normal(0.0, p.noise, raw.shape).astype(np.float32)
    return np.clip(np.round(raw), 0, 255).astype(np.uint8)
