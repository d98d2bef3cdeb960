"""A volume as a lazy dask array: one task per chunk of the volume, each reading its box through
the volume (``vol[...]``). The graph holds the volume itself, which pickles as its URL, so every
worker reopens the store and no data travels with the graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize


@dataclass(frozen=True)
class VoxelArray:
    """The array-like ``dask.array.from_array`` reads: the volume's array shape (channels
    first), dtype and numpy-style indexing in voxels."""

    volume: Any  # a pipeline.io.base.Volume (which imports this module when asked for dask)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.volume.array_shape

    @property
    def dtype(self) -> np.dtype:
        return self.volume.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.volume[key]


def volume_to_dask(volume: Any) -> da.Array:
    """``volume`` as a dask array of its chunks (all channels in each chunk)."""
    array = VoxelArray(volume)
    lead = () if volume.channels is None else (volume.channels,)
    chunks = (*lead, *volume.chunks)
    geometry = (array.shape, str(volume.dtype), volume.voxel_size, volume.offset, chunks)
    return da.from_array(
        array,
        chunks=chunks,
        name=f"volume-{tokenize(volume.url, volume.mode, *geometry)}",
        lock=False,
        asarray=True,
        fancy=False,
        meta=np.empty((0,) * array.ndim, dtype=volume.dtype),
    )
