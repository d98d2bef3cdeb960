"""Export to one OME-Zarr (NGFF 0.5) image with its segmentations as label images, the layout
napari (napari-ome-zarr) and ome-zarr-py read as "this segmentation labels that image" (and
neuroglancer opens the image and each label image as Zarr v3 sources)::

    <out>/                  the image: ome.multiscales, s0, s1, ... (mean-downsampled)
    <out>/labels/           ome.labels: the names of the label images
    <out>/labels/<name>/    a label image: ome.multiscales and ome.image-label (source ../../),
                            s0, s1, ... (mode-downsampled; as many levels as the image)

Name ``<out>`` ``x.ome.zarr``. Every voxel is copied blockwise by the convert stage and every
level built blockwise by the pyramid stage, so the export resumes (finished blocks are skipped)
and scales like them; voxel size, offset, (nanometre) axes and the segmentation's integer dtype
are kept. A label image is listed in ``labels`` only once all its levels are written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from distributed import Client

from pipeline.errors import InputError
from pipeline.io.base import Volume
from pipeline.io.hdf5 import H5_URL
from pipeline.io.urls import refuse_overwriting, volume_url
from pipeline.io.volume import open_input, output_shards
from pipeline.io.zarr_v3 import list_labels, set_image_label
from pipeline.runner.blockwise import RunReport
from pipeline.stages.convert import convert, default_block_shape
from pipeline.stages.pyramid import run_pyramid

__all__ = ["LABEL_SOURCE", "OmeZarrResult", "export_ome_zarr"]

LABEL_SOURCE = "../../"  # a label image's image, relative to it: <out>/labels/<name> -> <out>
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
WHAT = "export --format ome-zarr"


@dataclass
class OmeZarrResult:
    """What an OME-Zarr export wrote: the image's URL, its number of scale levels, the URL of
    each label image and the reports of the blockwise runs."""

    url: str
    levels: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    reports: list[RunReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "levels": self.levels,
            "labels": dict(self.labels),
            "reports": [r.as_dict() for r in self.reports],
        }


def export_ome_zarr(
    out: str,
    image_url: str,
    labels: Mapping[str, str],
    client: Client | None = None,
    progress: bool = True,
    levels: int | None = None,
    chunks: Sequence[int] | None = None,
) -> OmeZarrResult:
    """Write ``out`` as one OME-Zarr 0.5 image: the volume ``image_url`` with its scale levels
    (``levels`` in all, level 0 included; default: until the top level fits one chunk) and each
    segmentation ``labels[name]`` as the label image ``out/labels/<name>`` with as many levels.
    ``chunks``: Z,Y,X voxels of the output's chunks (default 64^3). Bad input (an output that
    is one of the inputs, a label that does not match the image voxel for voxel, a non-integer
    label) is refused before anything is written."""
    out = _output_url(out)
    refuse_overwriting([out], [image_url, *labels.values()], WHAT)
    image = open_input(image_url, "export")
    for name, url in labels.items():
        check_label(image, image_url, open_input(url, "export"), url, name)
    result = OmeZarrResult(out)
    result.reports.append(_copy(image_url, out, image, chunks, client, progress))
    pyramid = run_pyramid(out, labels=False, levels=levels, client=client, progress=progress)
    result.levels = 1 + len(pyramid)
    result.reports += pyramid
    if labels:
        list_labels(f"{out}/labels", [])
    for name, url in labels.items():
        dst = f"{out}/labels/{name}"
        result.reports.append(_copy(url, dst, image, chunks, client, progress))
        set_image_label(dst, LABEL_SOURCE)
        pyramid = run_pyramid(dst, True, result.levels, client=client, progress=progress)
        if 1 + len(pyramid) != result.levels:  # same shape and voxel size: same factors
            raise RuntimeError(f"{dst}: {1 + len(pyramid)} levels, the image {result.levels}")
        result.reports += pyramid
        list_labels(f"{out}/labels", [name])
        result.labels[name] = dst
    return result


def _output_url(out: str) -> str:
    url = volume_url(str(out)).rstrip("/")
    if url.startswith("precomputed://") or H5_URL.match(url) or url.lower().endswith(".tif"):
        raise InputError(
            f"{WHAT}: the output {out} is not a Zarr path; OME-Zarr is written to a folder or "
            "bucket prefix, e.g. out.ome.zarr or s3://bucket/out.ome.zarr"
        )
    return url


def check_label(image: Volume, image_url: str, label: Volume, label_url: str, name: str) -> None:
    """Refuse a label image that is not integer ids covering ``image`` voxel for voxel."""
    what = f"{WHAT}: the segmentation {label_url}"
    if not _NAME.match(name):
        raise InputError(
            f"{WHAT}: label name {name!r} is not a plain name; use letters, digits, '_', '-' "
            "and '.', starting with a letter or digit (e.g. --label-name segmentation)"
        )
    if not np.issubdtype(label.dtype, np.integer) or label.channels is not None:
        kind = f"{label.channels} channels of " if label.channels is not None else ""
        raise InputError(
            f"{what} holds {kind}{label.dtype}; a label image holds one integer id per voxel: "
            "give a segmentation or fragments volume (e.g. out.zarr/segmentation)"
        )
    for prop, unit, fix in (
        ("shape", "voxels", "crop both to the same box with `petaseg convert --roi`"),
        ("voxel_size", "nm", "give both at the same resolution (the matching scale level)"),
        ("offset", "nm", "they must start at the same place; crop with `petaseg convert --roi`"),
    ):
        have, want = tuple(getattr(label, prop)), tuple(getattr(image, prop))
        if have != want:
            raise InputError(
                f"{what} has {prop.replace('_', ' ')} {have} {unit} but the image {image_url} "
                f"has {want} {unit}; a label image must cover its image voxel for voxel: {fix}"
            )


def _copy(
    src_url: str,
    dst_url: str,
    image: Volume,
    chunks: Sequence[int] | None,
    client: Client | None,
    progress: bool,
) -> RunReport:
    """Copy ``src_url`` to ``dst_url`` blockwise (the convert stage), in chunks (and, at scale,
    one shard per block) laid out alike for the image and its labels."""
    shape = tuple(image.shape)
    chunks = tuple(min(int(c), s) for c, s in zip(chunks or (64, 64, 64), shape, strict=True))
    block = default_block_shape(chunks, shape)
    shards = output_shards(shape, block, chunks)
    return convert(src_url, dst_url, chunks, shards, block, client=client, progress=progress)
