"""Synthetic EM volumes with ground truth, so the demo and the tests run without ../shared.

``make_volume`` draws dense neuron-like labels (branching tubes that tile space, see
``synthetic_labels``), renders them as FIB-SEM-like raw data (``synthetic_render``) and keeps the
ideal boundary map; ``write_zarr`` stores all three as petaseg volumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from pipeline.export.overlay import section_overlay_png
from pipeline.io.volume import create_volume
from pipeline.provenance import provenance
from pipeline.synthetic.labels import make_neurons
from pipeline.synthetic.render import boundary_gt, render_em

__all__ = [
    "SyntheticVolume",
    "boundary_gt",
    "make_neurons",
    "make_volume",
    "preview_png",
    "render_em",
    "voxel_size_for",
]

XY_NM = 10


def voxel_size_for(anisotropy: float) -> tuple[int, int, int]:
    """Integer voxel size (nm, zyx) with z/xy equal to the anisotropy: 1 -> (10, 10, 10),
    4 -> (40, 10, 10), 2.5 -> (25, 10, 10); ratios that need it get a finer xy (1.25 -> 10/8)."""
    ratio = Fraction(anisotropy).limit_denominator(100)
    xy = XY_NM
    while (xy * ratio).denominator != 1:
        xy += 1
    return int(xy * ratio), xy, xy


def _chunks(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(32, 64, 64) chunks, or the whole axis where it is smaller."""
    return tuple(min(s, c) for s, c in zip(shape, (32, 64, 64), strict=True))


@dataclass
class SyntheticVolume:
    """Raw (uint8), labels (uint64, ids 1..N) and boundaries (float32) on one voxel grid."""

    raw: np.ndarray
    labels: np.ndarray
    boundaries: np.ndarray
    voxel_size: tuple[int, int, int]
    seed: int = 0
    anisotropy: float = 1.0

    def write_zarr(self, url_root: str | Path, exist_ok: bool = False) -> dict[str, str]:
        """Write ``raw``, ``labels/neurons`` and ``boundaries`` under a Zarr container URL;
        returns the URL of each."""
        root = str(url_root).rstrip("/")
        urls = {
            "raw": f"{root}/raw",
            "labels": f"{root}/labels/neurons",
            "boundaries": f"{root}/boundaries",
        }
        arrays = {"raw": self.raw, "labels": self.labels, "boundaries": self.boundaries}
        attrs = {
            "synthetic": {"seed": self.seed, "anisotropy": self.anisotropy},
            "petaseg": provenance("synthetic", {"seed": self.seed, "anisotropy": self.anisotropy}),
        }
        for name, url in urls.items():
            data = arrays[name]
            vol = create_volume(
                url,
                data.shape,
                data.dtype,
                self.voxel_size,
                chunks=_chunks(data.shape),
                attrs=attrs,
                exist_ok=exist_ok,
            )
            vol.write(vol.roi, data)
        return urls


def make_volume(
    shape: tuple[int, int, int] = (64, 128, 128),
    seed: int = 0,
    anisotropy: float = 1.0,
    radius: float = 6.0,
    noise: float | None = None,
) -> SyntheticVolume:
    """A seeded synthetic EM volume: labels, their rendering and the ideal boundary map."""
    labels = make_neurons(shape, seed=seed, anisotropy=anisotropy, radius=radius)
    raw = render_em(labels, seed=seed, anisotropy=anisotropy, noise=noise)
    return SyntheticVolume(
        raw=raw,
        labels=labels,
        boundaries=boundary_gt(labels),
        voxel_size=voxel_size_for(anisotropy),
        seed=seed,
        anisotropy=anisotropy,
    )


def preview_png(
    raw: np.ndarray, labels: np.ndarray, path: str | Path, z: int | None = None
) -> Path:
    """Save one section side by side: raw, and raw with the labels overlaid. A quick look at
    whether the data is EM-like and the ground truth lines up with it."""
    z = raw.shape[0] // 2 if z is None else z
    return section_overlay_png(raw[z], {"labels": labels[z]}, path, f"raw, z={z}")
