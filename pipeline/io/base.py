"""The Volume interface every format implements: geometry (shape, voxel size, offset, chunks,
shards in z, y, x), and ``read``/``write`` of ROIs in world units (nm), like neuroglancer and
daisy, so volumes with different offsets line up without the caller doing voxel arithmetic.

For notebooks a volume also reads numpy-style in voxels (``vol[0:64, 100:200, :]``, equal to
``read`` of the same box), becomes a lazy dask array (``to_dask``) and prints on one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import InputError
from pipeline.geometry import Coord, Roi
from pipeline.io.indexing import select_voxels, voxel_box_in_nm

if TYPE_CHECKING:
    import dask.array

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


@dataclass(frozen=True)
class VolumeLayout:
    """What a new volume is to be: spatial shape, chunks and shards (voxels, z, y, x), dtype,
    voxel size and offset (nm), channels (None: no channel axis) and its attributes."""

    shape: Coord
    dtype: np.dtype
    voxel_size: Coord
    offset: Coord
    chunks: Coord
    shards: Coord | None = None
    channels: int | None = None
    attrs: dict[str, Any] | None = None

    def geometry(self) -> tuple:
        """(shape, dtype, voxel size, offset, channels): what an existing volume must match to
        be reused."""
        return (self.shape, self.dtype, self.voxel_size, self.offset, self.channels)


class Volume:
    """A 3D (optionally multi-channel) array with voxel size and offset in nm, axes (c,) z, y, x."""

    format: str = "volume"  # the storage format, as a repr names it
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
        return (type(self).open, (self.url, self.mode))

    @classmethod
    def open(cls, url: str, mode: str = "r") -> Volume:
        raise NotImplementedError

    @property
    def roi(self) -> Roi:
        return Roi(
            self.offset, tuple(s * v for s, v in zip(self.shape, self.voxel_size, strict=True))
        )

    @property
    def array_shape(self) -> Coord:
        """The shape of what ``read()`` returns: ``channels`` first where there are channels,
        then the spatial ``shape`` (z, y, x)."""
        return self._array_shape(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        """numpy-style reading in voxels (``vol[0:64, 100:200, :]``, ``vol[-1]``): integers and
        slices of step 1 on the axes of ``array_shape``; equal to ``read`` of the same box."""
        selection = select_voxels(key, self.array_shape, self.url)
        roi = voxel_box_in_nm(selection.box, self.voxel_size, self.offset)
        return selection.take(self.read(roi))

    def to_dask(self) -> dask.array.Array:
        """A lazy dask array of this volume with its chunks (all channels in each chunk); each
        chunk is read through the volume, which travels to workers as its URL."""
        from pipeline.io.dask_array import volume_to_dask  # dask.array only where asked for

        return volume_to_dask(self)

    def __repr__(self) -> str:
        axes = "c,z,y,x" if self.channels is not None else "z,y,x"
        offset = f" offset={self.offset}nm" if any(self.offset) else ""
        shards = f" shards={self.shards}" if self.shards else ""
        return (
            f"<Volume {self.format} {self.url!r} shape({axes})={self.array_shape} "
            f"dtype={self.dtype} voxel_size={self.voxel_size}nm{offset} "
            f"chunks={self.chunks}{shards}>"
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


def check_dtype(dtype: Any, what: str) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in SUPPORTED_DTYPES:
        raise InputError(
            f"{what}: unsupported dtype {dt}; use one of uint8/16/32/64, int*, float16/32/64"
        )
    return dt
