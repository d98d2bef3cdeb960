"""Volumes by URL: open or create a volume of any format from its URL (Zarr v3, local or s3://;
``precomputed://``; read-only HDF5 and TIFF stacks)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from pipeline.errors import InputError
from pipeline.geometry import as_coord
from pipeline.io.base import Volume, VolumeLayout, check_dtype
from pipeline.io.hdf5 import H5_URL, Hdf5Volume
from pipeline.io.precomputed import PrecomputedVolume, precomputed_exists
from pipeline.io.problems import storage_access
from pipeline.io.tiff import TiffVolume
from pipeline.io.urls import refuse_overwriting, volume_url
from pipeline.io.zarr_v3 import ZarrVolume, zarr_exists


def _scheme(url: str) -> str:
    if url.startswith("precomputed://"):
        return "precomputed"
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url) and not url.startswith(
        ("file://", "s3://", "gs://")
    ):
        raise InputError(
            f"unknown URL scheme in {url!r}: use a local path, file://, s3://, gs:// (Zarr), "
            "precomputed://<cloudpath>, a .h5 file with its dataset (file.h5/volumes/raw), or a .tif stack"
        )
    if H5_URL.match(url):
        return "hdf5"
    if url.lower().endswith((".tif", ".tiff")) or url.lower().endswith("/"):
        return "tiff"
    return "zarr"


def open_volume(url: str, mode: str = "r") -> Volume:
    """Open an existing volume. ``mode`` "r" reads, "a" reads and writes. Neuroglancer's
    source forms (``zarr://``, ``zarr3://``, ``precomputed://``) are accepted."""
    url = volume_url(str(url))
    with storage_access(url):
        return _open_by_scheme(url, mode)


def _open_by_scheme(url: str, mode: str) -> Volume:
    scheme = _scheme(url)
    if scheme == "precomputed":
        return PrecomputedVolume.open(url, mode)
    if scheme == "hdf5":
        if mode != "r":
            raise InputError(f"{url}: HDF5 is read-only in petaseg; convert it to Zarr to write")
        return Hdf5Volume.open(url)
    if scheme == "tiff":
        if mode != "r":
            raise InputError(
                f"{url}: TIFF stacks are read-only in petaseg; convert to Zarr to write"
            )
        return TiffVolume.open(url)
    return ZarrVolume.open(url, mode)


def open_input(url: str, what: str) -> Volume:
    """Open the volume a stage reads; an empty one (a side of 0 voxels) is refused, since there
    is nothing to ``what``."""
    vol = open_volume(url)
    if any(int(s) == 0 for s in vol.shape):
        raise InputError(
            f"{url} is empty (shape {tuple(vol.shape)}): nothing to {what}; "
            "give a volume with at least one voxel"
        )
    return vol


def create_volume(
    url: str,
    shape: Sequence[int],
    dtype: Any,
    voxel_size: Sequence[int],
    offset: Sequence[int] = (0, 0, 0),
    chunks: Sequence[int] = (64, 64, 64),
    shards: Sequence[int] | None = None,
    channels: int | None = None,
    attrs: dict[str, Any] | None = None,
    exist_ok: bool = False,
    sources: Sequence[str | None] = (),
) -> Volume:
    """Create a volume (Zarr v3 with OME-Zarr metadata, or precomputed). With ``exist_ok`` an
    existing volume of the same geometry is reopened to resume writing it, but only one that
    the same stage wrote (its ``attrs["petaseg"]["stage"]``): an input, or another stage's
    output, is never written over. ``sources`` are the volumes the writer reads: an output that
    is one of them, lies inside one or holds one is refused before anything is written."""
    url = volume_url(str(url))
    refuse_overwriting([url], sources, f"writing {url}")
    with storage_access(url):
        return _create_volume(
            url, shape, dtype, voxel_size, offset, chunks, shards, channels, attrs, exist_ok
        )


def _create_volume(
    url: str,
    shape: Sequence[int],
    dtype: Any,
    voxel_size: Sequence[int],
    offset: Sequence[int],
    chunks: Sequence[int],
    shards: Sequence[int] | None,
    channels: int | None,
    attrs: dict[str, Any] | None,
    exist_ok: bool,
) -> Volume:
    shape, voxel_size = as_coord(shape, 3), as_coord(voxel_size, 3)
    offset, chunks = as_coord(offset, 3), as_coord(chunks, 3)
    shards = as_coord(shards, 3) if shards is not None else None
    dtype = check_dtype(dtype, url)
    if any(v <= 0 for v in voxel_size):
        raise InputError(f"{url}: voxel size must be positive, got {voxel_size}")
    if any(o % v for o, v in zip(offset, voxel_size, strict=True)):
        raise InputError(
            f"{url}: offset {offset} nm is not a multiple of the voxel size {voxel_size} nm"
        )
    if shards is not None and any(s % c for s, c in zip(shards, chunks, strict=True)):
        raise InputError(f"{url}: shards {shards} must be a multiple of chunks {chunks}")
    if any(s <= 0 for s in shape):
        raise InputError(f"{url}: cannot create an empty volume (shape {shape}); nothing to write")
    layout = VolumeLayout(shape, dtype, voxel_size, offset, chunks, shards, channels, attrs)
    if exists(url):
        if not exist_ok:
            raise InputError(f"{url} already exists; remove it or choose another output URL")
        vol = open_volume(url, mode="a")
        refuse_foreign(vol, attrs)
        want = layout.geometry()
        have = (vol.shape, vol.dtype, vol.voxel_size, vol.offset, vol.channels)
        if want != have:
            raise InputError(
                f"{url} exists with shape/dtype/voxel size/offset/channels {have}, "
                f"but this run needs {want}; remove it or write to another URL"
            )
        if attrs:
            vol.set_attrs(**attrs)
        return vol
    scheme = _scheme(url)
    if scheme == "precomputed":
        return PrecomputedVolume.create(url, layout)
    if scheme != "zarr":
        raise InputError(
            f"{url}: petaseg writes Zarr (a path or s3://) or precomputed://, not {scheme}"
        )
    return ZarrVolume.create(url, layout)


def refuse_foreign(vol: Volume, attrs: dict[str, Any] | None) -> None:
    """Refuse to resume writing ``vol`` unless the stage about to write it wrote it."""
    stage = ((attrs or {}).get("petaseg") or {}).get("stage")
    written_by = (vol.attrs.get("petaseg") or {}).get("stage")
    if written_by != stage:
        by = f"petaseg's {written_by} stage" if written_by else "something other than petaseg"
        raise InputError(
            f"{vol.url} already exists and was written by {by}, not by "
            f"{stage or 'this command'}: petaseg only resumes its own outputs and never writes "
            "over other data; write to another URL (or remove it if it is disposable)"
        )


def exists(url: str) -> bool:
    scheme = _scheme(url)
    if scheme == "precomputed":
        return precomputed_exists(url)
    if scheme == "zarr":
        return zarr_exists(url)
    path = H5_URL.match(url).group("file") if scheme == "hdf5" else url
    return os.path.exists(path)
