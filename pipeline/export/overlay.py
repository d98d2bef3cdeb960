"""Segmentations over EM, one section as a PNG: the quickest look at whether a result is sane
(boundaries on membranes, no giant merged objects, no confetti). An export for people, as the
precomputed layers are one for viewers. matplotlib (about a second to import) loads only when a
picture is drawn."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from pipeline.geometry import Roi
from pipeline.io.volume import open_volume
from pipeline.seg.ids import mix64


def label_colours(ids: np.ndarray) -> np.ndarray:
    """A bright colour per id, the same for an id wherever it appears (a hash of the id, so
    uint64 ids need no table); 0 (background) is black."""
    x = mix64(ids)
    rgb = np.stack([(x >> np.uint64(s)) & np.uint64(0xFF) for s in (0, 8, 16)], axis=-1)
    rgb = (40 + rgb.astype(np.uint16) * 215 // 255).astype(np.uint8)
    rgb[np.asarray(ids) == 0] = 0
    return rgb


def section_overlay_png(
    section: np.ndarray,
    labels: Mapping[str, np.ndarray],
    path: str | Path,
    title: str = "",
    alpha: float = 0.45,
) -> Path:
    """Save ``section`` (2D uint8 EM) beside each labelling blended over it, titled by its key
    and object count."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    grey = np.repeat(np.asarray(section, np.float32)[..., None], 3, axis=-1)
    fig = Figure(figsize=(4.2 * (1 + len(labels)), 4.6))
    axes = np.atleast_1d(fig.subplots(1, 1 + len(labels)))
    axes[0].imshow(section, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    axes[0].set_title(title or "EM")
    for ax, (name, ids) in zip(axes[1:], labels.items(), strict=True):
        blend = (1 - alpha) * grey + alpha * label_colours(ids).astype(np.float32)
        ax.imshow(blend.astype(np.uint8), interpolation="nearest")
        n = len(np.unique(ids[ids != 0]))
        ax.set_title(f"{name} ({n} objects)")
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def volume_overlay_png(
    raw_url: str, labels: Mapping[str, str], path: str | Path, z: int | None = None
) -> Path:
    """Like ``section_overlay_png`` for volumes by URL; reads the one section only."""
    raw = open_volume(raw_url)
    z = raw.shape[0] // 2 if z is None else int(z)
    vs, off = raw.voxel_size, raw.offset
    roi = Roi(
        (off[0] + z * vs[0], off[1], off[2]), (vs[0], raw.shape[1] * vs[1], raw.shape[2] * vs[2])
    )
    section = raw.read(roi)[0]
    if section.dtype != np.uint8:
        lo, hi = np.percentile(section, [0.5, 99.5])
        section = np.clip((section - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)
    sections = {name: open_volume(url).read(roi)[0] for name, url in labels.items()}
    return section_overlay_png(section, sections, path, f"EM, z={z}")
