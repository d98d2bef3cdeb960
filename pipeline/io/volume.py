"""Volumes by URL: open or create a volume of any format from its URL (Zarr v3, local or s3://;
``precomputed://``; read-only HDF5 and TIFF stacks)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import Any

from pipeline.errors import InputError
from pipeline.geometry import Coord, as_coord
from pipeline.io.base import Volume, VolumeLayout, check_dtype
from pipeline.io.hdf5 import H5_URL, Hdf5Volume
from pipeline.io.precomputed import PrecomputedVolume, precomputed_exists
from pipeline.io.problems import storage_access
from pipeline.io.tiff import TiffVolume
from pipeline.io.urls import refuse_overwriting, volume_url
from pipeline.io.zarr_v3 import ZarrVolume, zarr_exists

# Outputs of at least this many voxels (about 1.3e8, e.g. 512^3) are written in shards: one
# shard per block task, so no two tasks write one shard, and one file per block instead of one
# per chunk. Below it an output has at most a few hundred chunk files and stays unsharded.
SHARD_ABOVE = 2**27
SHARD_SIDE = 64  # voxels: at most this per side for the chunks inside a shard


def output_shards(
    shape: Sequence[int], block: Sequence[int], chunks: Sequence[int]
) -> Coord | None:
    """The shard shape of a new output of ``shape`` voxels written by blocks of ``block`` voxels
    in ``chunks``: the block itself when the output has ``SHARD_ABOVE`` voxels or more and a
    block holds several whole chunks; None (unsharded) otherwise."""
    block, chunks = tuple(int(b) for b in block), tuple(int(c) for c in chunks)
    if math.prod(int(s) for s in shape) < SHARD_ABOVE or block == chunks:
        return None
    if any(b % c for b, c in zip(block, chunks, strict=True)):
        return None
    return block


def shard_chunks(block: Sequence[int]) -> Coord:
    """Chunks for a shard of ``block`` voxels: the largest divisor of each side up to
    ``SHARD_SIDE`` (16 or more), else the whole side."""
    out = []
    for b in block:
        divisors = [d for d in range(min(int(b), SHARD_SIDE), 15, -1) if b % d == 0]
        out.append(divisors[0] if divisors else int(b))
    return tuple(out)


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
    labels: bool = False,
) -> Volume:
    """Create a volume (Zarr v3 with OME-Zarr metadata, or precomputed). With ``exist_ok`` an
    existing volume of the same geometry is reopened to resume writing it, but only one that
    the same stage wrote (its ``attrs["petaseg"]["stage"]``): an input, or another stage's
    output, is never written over. ``sources`` are the volumes the writer reads: an output that
    is one of them, lies inside one or holds one is refused before anything is written.
    ``labels``: the volume holds integer labels (fragments, segmentations): a Zarr volume gets
    OME-Zarr ``image-label`` metadata. ``shards``: see ``output_shards`` for the default rule."""
    url = volume_url(str(url))
    refuse_overwriting([url], sources, f"writing {url}")
    with storage_access(url):
        return _create_volume(
            url, shape, dtype, voxel_size, offset, chunks, shards, channels, attrs, exist_ok, labels
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
    labels: bool = False,
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
    return ZarrVolume.create(url, layout, labels=labels)


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
