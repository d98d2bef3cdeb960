"""OME-Zarr (NGFF 0.5) metadata of petaseg's Zarr volumes: the scale levels ``s0``, ``s1``, ...
of a volume (``ome.multiscales``) and, for segmentations, ``ome.image-label`` so napari,
neuroglancer and webknossos show them as labels.

Level ``i`` is level 0 reduced by the cumulative factor ``f``: its voxel size is ``voxel_size *
f``, and, since a coarse voxel covers ``f`` fine voxels and NGFF places a voxel's value at its
centre, its translation is ``offset + voxel_size * (f - 1) / 2``.

An image's label images live inside it (NGFF "labels"): ``IMAGE/labels/NAME`` is a multiscale
label image whose ``image-label`` names its image as ``source`` (``../../``), and the group
``IMAGE/labels`` lists the names (``labels_group``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["NGFF_VERSION", "image_label", "labels_group", "level_path", "multiscales"]

NGFF_VERSION = "0.5"


def level_path(level: int) -> str:
    """The array of a scale level inside the volume's group: ``s0``, ``s1``, ..."""
    return f"s{int(level)}"


def _dataset(
    level: int, voxel_size: Sequence[int], offset: Sequence[int], factor: Sequence[int], lead: int
) -> dict[str, Any]:
    scale = [float(v * f) for v, f in zip(voxel_size, factor, strict=True)]
    shift = [float(o + v * (f - 1) / 2) for o, v, f in zip(offset, voxel_size, factor, strict=True)]
    return {
        "path": level_path(level),
        "coordinateTransformations": [
            {"type": "scale", "scale": [1.0] * lead + scale},
            {"type": "translation", "translation": [0.0] * lead + shift},
        ],
    }


def multiscales(
    name: str,
    voxel_size: Sequence[int],
    offset: Sequence[int],
    channels: int | None,
    factors: Sequence[Sequence[int]] = ((1, 1, 1),),
) -> dict[str, Any]:
    """The ``ome`` attribute of a volume's group with one dataset per cumulative ``factors``
    entry (level 0 first, factor (1, 1, 1)); axes (c,) z, y, x in nanometres."""
    axes: list[dict[str, str]] = [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"]
    lead = 0
    if channels is not None:
        axes, lead = [{"name": "c", "type": "channel"}, *axes], 1
    datasets = [_dataset(i, voxel_size, offset, f, lead) for i, f in enumerate(factors)]
    return {
        "version": NGFF_VERSION,
        "multiscales": [{"name": name, "axes": axes, "datasets": datasets}],
    }


def image_label(source_image: str | None = None) -> dict[str, Any]:
    """The ``image-label`` entry of a segmentation's ``ome`` attribute (NGFF "labels"): marks the
    multiscale image as integer labels; ``source_image`` is the image they label, relative to
    the label group, when known."""
    out: dict[str, Any] = {}
    if source_image:
        out["source"] = {"image": source_image}
    return out


def labels_group(names: Sequence[str]) -> dict[str, Any]:
    """The ``ome`` attribute of an image's ``labels`` group: the paths of the label images in it."""
    return {"version": NGFF_VERSION, "labels": list(names)}
