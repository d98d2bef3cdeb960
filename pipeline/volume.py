"""Volumes by URL: one interface over Zarr v3 (local or s3://), Neuroglancer precomputed, HDF5
and TIFF stacks. ROIs passed to ``read``/``write`` are in world units (nm), like neuroglancer and
daisy, so volumes with different offsets line up without the caller doing voxel arithmetic.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InputError
from .geometry import Coord, Roi, as_coord

SUPPORTED_DTYPES = {
    np.dtype(t)
    for t in (
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "int8",
        "int16",
        "int32",
        "int64",
        "float16",
        "float32",
        "float64",
        "bool",
    )
}


class Volume:
    """A 3D (optionally multi-channel) array with voxel size and offset in nm, axes (c,) z, y, x."""

    url: str
    mode: str
    shape: Coord  # spatial shape in voxels
    channels: int | None
    dtype: np.dtype
    voxel_size: Coord
    offset: Coord
    chunks: Coord
    shards: Coord | None
    writable: bool = False

    # pickled as its URL: every worker reopens the store itself (h5py and some stores do not pickle)
    def __reduce__(self):
        return (open_volume, (self.url, self.mode))

    @property
    def roi(self) -> Roi:
        return Roi(
            self.offset, tuple(s * v for s, v in zip(self.shape, self.voxel_size, strict=True))
        )

    @property
    def chunk_roi_shape(self) -> Coord:
        """The write grid in nm: the shard shape where there are shards, else the chunk shape."""
        grid = self.shards or self.chunks
        return tuple(g * v for g, v in zip(grid, self.voxel_size, strict=True))

    @property
    def attrs(self) -> dict[str, Any]:
        return {}

    def set_attrs(self, **attrs: Any) -> None:
        raise InputError(f"{self.url} is read-only; write to a Zarr or precomputed URL instead")

    def _voxel_roi(self, roi: Roi) -> Roi:
        if roi.ndim != 3:
            raise InputError(f"{self.url}: expected a 3D ROI (z, y, x), got {roi}")
        try:
            return roi.shift(tuple(-o for o in self.offset)).to_voxels(self.voxel_size)
        except ValueError:
            raise InputError(
                f"{self.url}: {roi} is not aligned to the voxel size {self.voxel_size} nm "
                f"with offset {self.offset} nm; snap the ROI to the voxel grid"
            ) from None

    def read(self, roi: Roi | None = None, pad: float | str | None = None) -> np.ndarray:
        """Read a ROI (nm). Parts outside the volume are refused, or padded when ``pad`` is given
        (a fill value, or "edge" to repeat the border)."""
        if roi is None:
            roi = self.roi
        inside = roi.intersect(self.roi)
        if inside != roi and pad is None:
            raise InputError(
                f"{self.url}: {roi} reaches outside the volume {self.roi}; "
                "read a ROI inside it (or pass pad=...)"
            )
        if inside.empty:
            data = np.zeros(self._array_shape(self._voxel_roi(roi).shape), dtype=self.dtype)
            if pad not in (None, "edge"):
                data[...] = pad
            return data
        data = self._read_voxels(self._voxel_roi(inside))
        if inside == roi:
            return data
        vin, vout = self._voxel_roi(inside), self._voxel_roi(roi)
        widths = [
            (bi - bo, eo - ei)
            for bi, bo, ei, eo in zip(vin.begin, vout.begin, vin.end, vout.end, strict=True)
        ]
        if self.channels is not None:
            widths = [(0, 0)] + widths
        if pad == "edge":
            return np.pad(data, widths, mode="edge")
        return np.pad(data, widths, mode="constant", constant_values=pad)

    def write(self, roi: Roi, data: np.ndarray) -> None:
        if not self.writable:
            raise InputError(
                f"{self.url} is opened read-only; open it with mode='a' or write elsewhere"
            )
        if not self.roi.contains(roi):
            raise InputError(
                f"{self.url}: cannot write {roi}, it lies outside the volume {self.roi}"
            )
        vroi = self._voxel_roi(roi)
        expected = self._array_shape(vroi.shape)
        if tuple(data.shape) != expected:
            raise InputError(
                f"{self.url}: data of shape {data.shape} does not fit {roi} (needs {expected})"
            )
        self._write_voxels(vroi, np.asarray(data, dtype=self.dtype))

    def _array_shape(self, spatial: Sequence[int]) -> Coord:
        return tuple(spatial) if self.channels is None else (self.channels, *spatial)

    def _read_voxels(self, vroi: Roi) -> np.ndarray:
        raise NotImplementedError

    def _write_voxels(self, vroi: Roi, data: np.ndarray) -> None:
        raise NotImplementedError

    def nbytes_on_disk(self) -> int | None:
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "shape": list(self.shape),
            "channels": self.channels,
            "dtype": str(self.dtype),
            "voxel_size_nm": list(self.voxel_size),
            "offset_nm": list(self.offset),
            "roi_nm": {"begin": list(self.roi.begin), "end": list(self.roi.end)},
            "chunks": list(self.chunks),
            "shards": list(self.shards) if self.shards else None,
            "bytes_on_disk": self.nbytes_on_disk(),
        }


_H5 = re.compile(r"^(?P<file>.+?\.(?:h5|hdf5|hdf))(?:/(?P<dataset>.*))?$")


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
    if _H5.match(url):
        return "hdf5"
    if url.lower().endswith((".tif", ".tiff")) or url.lower().endswith("/"):
        return "tiff"
    return "zarr"


def check_dtype(dtype: Any, what: str) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in SUPPORTED_DTYPES:
        raise InputError(
            f"{what}: unsupported dtype {dt}; use one of uint8/16/32/64, int*, float16/32/64"
        )
    return dt


def open_volume(url: str, mode: str = "r") -> Volume:
    """Open an existing volume. ``mode`` "r" reads, "a" reads and writes."""
    url = str(url)
    scheme = _scheme(url)
    if scheme == "precomputed":
        from .backends.precomputed import PrecomputedVolume

        return PrecomputedVolume.open(url, mode)
    if scheme == "hdf5":
        from .backends.hdf5 import Hdf5Volume

        if mode != "r":
            raise InputError(f"{url}: HDF5 is read-only in petaseg; convert it to Zarr to write")
        return Hdf5Volume.open(url)
    if scheme == "tiff":
        from .backends.tiff import TiffVolume

        if mode != "r":
            raise InputError(
                f"{url}: TIFF stacks are read-only in petaseg; convert to Zarr to write"
            )
        return TiffVolume.open(url)
    from .backends.zarr_store import ZarrVolume

    return ZarrVolume.open(url, mode)


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
) -> Volume:
    """Create a volume (Zarr v3 with OME-Zarr metadata, or precomputed). With ``exist_ok`` an
    existing volume of the same geometry is reopened; one of another geometry is refused."""
    url = str(url)
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
    if exists(url):
        if not exist_ok:
            raise InputError(f"{url} already exists; remove it or choose another output URL")
        vol = open_volume(url, mode="a")
        want = (shape, dtype, voxel_size, offset, channels)
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
        from .backends.precomputed import PrecomputedVolume

        return PrecomputedVolume.create(
            url, shape, dtype, voxel_size, offset, chunks, channels, attrs
        )
    if scheme != "zarr":
        raise InputError(
            f"{url}: petaseg writes Zarr (a path or s3://) or precomputed://, not {scheme}"
        )
    from .backends.zarr_store import ZarrVolume

    return ZarrVolume.create(url, shape, dtype, voxel_size, offset, chunks, shards, channels, attrs)


def exists(url: str) -> bool:
    scheme = _scheme(url)
    if scheme == "precomputed":
        from .backends.precomputed import precomputed_exists

        return precomputed_exists(url)
    if scheme == "zarr":
        from .backends.zarr_store import zarr_exists

        return zarr_exists(url)
    path = _H5.match(url).group("file") if scheme == "hdf5" else url
    return os.path.exists(path)
