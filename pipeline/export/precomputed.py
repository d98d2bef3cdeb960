"""Export to Neuroglancer precomputed: a multiscale image layer, a multiscale segmentation layer
(with meshes, skeletons and segment properties), the correction candidates as point
annotations, and a viewer state.

Folder layout (serve it over HTTP, or copy it to a bucket)::

    <out>/image/               precomputed image, one scale per level (mean-downsampled)
    <out>/segmentation/        precomputed labels (mode-downsampled), mesh/, skeletons/,
                               segment_properties/
    <out>/annotations/         candidate points (when a candidate list is given)
    <out>/viewer_state.json    {"base": ..., "state": {...}, "url": ...}

Everything volumetric runs through ``run_blockwise``, so it resumes and scales like the other
stages; the segmentation can be given as fragments plus a lookup table (any proofreading
version), relabelled per block on the fly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client

from pipeline.errors import InputError
from pipeline.export.incremental import (
    check_incremental,
    read_record,
    reexport_segmentation,
    version_lut,
    write_record,
)
from pipeline.export.layers import (
    LayerGeometry,
    choose_chunks,
    create_layer,
    write_pyramid,
)
from pipeline.export.objects import ObjectParams, write_objects
from pipeline.export.sharded import SizeCounter
from pipeline.export.sharded_run import (
    default_mesh_level,
    default_skeleton_level,
    object_layout,
    write_sharded_objects,
)
from pipeline.export.state import state_url, viewer_state, write_point_annotations
from pipeline.io.cloud import cloudpath
from pipeline.io.fs import filesystem, join
from pipeline.io.urls import refuse_overwriting
from pipeline.io.volume import open_input, open_volume
from pipeline.proofread.review import read_candidates
from pipeline.scales import level_factors, levels_for

LOCAL_BASE = "http://127.0.0.1:8000"


@dataclass
class ExportResult:
    out: str
    layers: dict[str, str] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    url: str = ""
    reports: list = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "layers": self.layers,
            "url": self.url,
            "seconds": self.seconds,
            "blocks": {r.stage: r.blocks_run for r in self.reports},
        }


def _geometry(vol, chunks: Sequence[int] | None) -> LayerGeometry:
    if vol.channels is not None:
        raise InputError(
            f"{vol.url} has {vol.channels} channels; export one channel (convert it first)"
        )
    return LayerGeometry(vol.shape, vol.voxel_size, vol.offset, choose_chunks(vol.shape, chunks))


def export_image(
    out: str,
    image_url: str,
    levels: int | None = None,
    chunks: Sequence[int] | None = None,
    client: Client | None = None,
    progress: bool = True,
) -> tuple[str, list]:
    """Write ``image_url`` as a multiscale precomputed image layer under ``out``; returns the
    layer's path and the reports of its levels."""
    vol = open_input(image_url, "export")
    geom = _geometry(vol, chunks)
    factors = level_factors(
        geom.voxel_size, geom.shape, levels_for(geom.shape, geom.chunks, levels)
    )
    layer = str(Path(out) / "image") if "://" not in out else f"{out.rstrip('/')}/image"
    info = create_layer(layer, "image", vol.dtype, geom, factors)
    return layer, write_pyramid(
        layer, "image", info, factors, vol.url, client=client, progress=progress
    )


def export_segmentation(
    out: str,
    segmentation_url: str,
    lut: str | None = None,
    levels: int | None = None,
    chunks=None,
    objects: ObjectParams | None = None,
    object_block: Sequence[int] = (128, 128, 128),
    client: Client | None = None,
    progress: bool = True,
    provenance: dict | None = None,
) -> tuple[str, list, dict]:
    """Labels (or fragments + ``lut``) -> a multiscale segmentation layer with objects
    (sharded multi-resolution by default, ``objects.format="legacy"`` for one file each)."""
    vol = open_input(segmentation_url, "export")
    if vol.dtype.kind not in "ui":
        raise InputError(
            f"{segmentation_url} is {vol.dtype}; a segmentation must hold integer labels"
        )
    geom = _geometry(vol, chunks)
    factors = level_factors(
        geom.voxel_size, geom.shape, levels_for(geom.shape, geom.chunks, levels)
    )
    layer = (
        str(Path(out) / "segmentation") if "://" not in out else f"{out.rstrip('/')}/segmentation"
    )
    dtype = (
        np.dtype("uint32")
        if vol.dtype == np.dtype("uint32") and lut is None
        else np.dtype("uint64")
    )
    objects = objects if objects is not None else ObjectParams()
    if objects.format not in ("sharded", "legacy"):
        raise InputError(f"mesh format {objects.format!r}: use sharded or legacy")
    extra = {"segment_properties": "segment_properties"}
    if objects.meshes:
        extra["mesh"] = "mesh"
    if objects.skeletons:
        extra["skeletons"] = "skeletons"
    info = create_layer(layer, "segmentation", dtype, geom, factors, extra)
    t0 = time.perf_counter()
    if objects.format == "legacy":
        reports = write_pyramid(
            layer, "segmentation", info, factors, vol.url, lut=lut, client=client, progress=progress
        )
        t1 = time.perf_counter()
        block = tuple(min(b, s) for b, s in zip(object_block, geom.shape, strict=True))
        reports += write_objects(layer, info, objects, block, client=client, progress=progress)
        return layer, reports, {"downsample": t1 - t0, "objects": time.perf_counter() - t1}
    layout = _sharded_layout(info, objects, object_block)
    reports = write_pyramid(
        layer, "segmentation", info, factors, vol.url, lut=lut, client=client,
        progress=progress, params={"count": layout["mesh"]},
        counter=SizeCounter(layer, layout["mesh"]),
    )  # fmt: skip
    t1 = time.perf_counter()
    reports += write_sharded_objects(layer, info, objects, layout, client, progress, tag=str(lut))
    record = {**layout, "params": objects.as_dict(), "segmentation": vol.url, "lut": lut}
    write_record(layer, {**record, **(provenance or {})})
    return layer, reports, {"downsample": t1 - t0, "objects": time.perf_counter() - t1}


def _sharded_layout(info: dict, objects: ObjectParams, object_block: Sequence[int]) -> dict:
    level, skeleton_level = objects.mesh_level, objects.skeleton_level
    if level is None:
        level = default_mesh_level(info, objects.min_size)
    if skeleton_level is None:
        skeleton_level = default_skeleton_level(info, objects.min_size)
    for option, value in (("--mesh-level", level), ("--skeleton-level", skeleton_level)):
        if not 0 <= value < len(info["scales"]):
            raise InputError(
                f"{option} {value}: the layer has levels 0..{len(info['scales']) - 1}; "
                "choose one of them (or raise --levels)"
            )
    return object_layout(info, level, object_block, skeleton_level)


def export(
    out: str,
    image_url: str | None = None,
    segmentation_url: str | None = None,
    lut: str | None = None,
    candidates: str | None = None,
    levels: int | None = None,
    chunks: Sequence[int] | None = None,
    objects: ObjectParams | None = None,
    object_block: Sequence[int] = (128, 128, 128),
    base: str = LOCAL_BASE,
    client: Client | None = None,
    progress: bool = True,
    edit_log: str | None = None,
    version: int | None = None,
) -> ExportResult:
    """Write the export folder ``out`` (see the module docstring) and its viewer state. With
    ``edit_log`` the segmentation is the fragments under a proofreading version (default: the
    head); a folder exported earlier from the same log is brought up to date incrementally."""
    if image_url is None and segmentation_url is None:
        raise InputError("nothing to export: give an image (--image) and/or a segmentation")
    if (lut is not None or edit_log is not None) and segmentation_url is None:
        raise InputError("--lut needs the fragments it applies to (--segmentation FRAGMENTS_URL)")
    if lut is not None and edit_log is not None:
        raise InputError("give --lut or --edit-log (a proofreading version), not both")
    refuse_overwriting(
        [out], [image_url, segmentation_url, lut, candidates, edit_log], "petaseg export"
    )
    if "://" not in out:
        Path(out).mkdir(parents=True, exist_ok=True)
    result = ExportResult(out=out)
    ref = None
    if image_url is not None:
        t0 = time.perf_counter()
        layer, reports = export_image(out, image_url, levels, chunks, client, progress)
        result.layers["image"], ref = layer, open_volume(image_url)
        result.reports += reports
        result.seconds["image"] = time.perf_counter() - t0
    if segmentation_url is not None:
        t0 = time.perf_counter()
        args = (levels, chunks, objects, object_block, client, progress)
        layer, reports, secs = _segmentation(out, segmentation_url, lut, edit_log, version, args)
        result.layers["segmentation"], ref = layer, open_volume(segmentation_url)
        result.reports += reports
        result.seconds.update({f"segmentation_{k}": v for k, v in secs.items()})
        result.seconds["segmentation"] = time.perf_counter() - t0
    ann = None
    if candidates is not None:
        if "://" in out:
            raise InputError("annotations are written to local export folders only")
        data = read_candidates(candidates)
        write_point_annotations(Path(out) / "annotations", data["candidates"], ref.voxel_size)
        ann = "annotations"
        result.layers["annotations"] = str(Path(out) / "annotations")
    result.state = viewer_state(
        base,
        ref.voxel_size,
        ref.shape,
        ref.offset,
        image="image" if image_url else None,
        segmentation="segmentation" if segmentation_url else None,
        annotations=ann,
    )
    result.url = state_url(result.state)
    write_state_file(out, base, result.state)
    return result


def _segmentation(out, segmentation_url, lut, edit_log, version, args):
    """The segmentation layer: whole, or brought up to date from an earlier proofreading version."""
    if edit_log is None:
        return export_segmentation(out, segmentation_url, lut, *args)
    lut, version = version_lut(out, edit_log, version)
    layer = str(Path(out) / "segmentation") if "://" not in out else f"{out}/segmentation"
    record = read_record(layer)
    objects = args[2] if args[2] is not None else ObjectParams()
    url = open_input(segmentation_url, "export").url
    if check_incremental(record, url, edit_log) and record["params"] == objects.as_dict():
        t0 = time.perf_counter()
        done = reexport_segmentation(layer, record, lut, version, args[4], args[5])
        return layer, done.pop("reports"), {"incremental": time.perf_counter() - t0, **done}
    provenance = {"edit_log": edit_log, "version": version}
    return export_segmentation(out, segmentation_url, lut, *args, provenance=provenance)


def write_state_file(out: str, base: str, state: dict[str, Any]) -> None:
    fs, path = filesystem(join(cloudpath(out) if "://" in out else out, "viewer_state.json"))
    with fs.open(path, "w") as f:
        json.dump({"base": base, "state": state, "url": state_url(state)}, f, indent=1)


def read_state_file(out: str) -> dict[str, Any]:
    path = Path(out) / "viewer_state.json"
    if not path.exists():
        raise InputError(f"{out} has no viewer_state.json; run `petaseg export` into it first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{path} is not valid JSON ({e}); rerun `petaseg export`") from None
