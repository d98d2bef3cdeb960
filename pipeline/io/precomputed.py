"""Neuroglancer precomputed volumes through cloud-volume (axes x, y, z, c there; z, y, x here)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.geometry import Roi
from pipeline.io.base import Volume, VolumeLayout
from pipeline.io.cloud import cloud_files, new_layer_info, open_cloudvolume

ATTRS_FILE = "petaseg_attrs.json"


def precomputed_exists(url: str) -> bool:
    return cloud_files(url).exists("info")


class PrecomputedVolume(Volume):
    format = "precomputed"

    @classmethod
    def _wrap(cls, url: str, mode: str, cv) -> PrecomputedVolume:
        vol = cls()
        vol.url, vol.mode, vol._cv = url, mode, cv
        res = [int(round(float(r))) for r in cv.resolution]
        vol.voxel_size = tuple(res[::-1])
        vox_off = [int(v) for v in cv.voxel_offset]
        vol.offset = tuple(o * r for o, r in zip(vox_off[::-1], vol.voxel_size, strict=True))
        vol._voxel_offset = tuple(vox_off[::-1])
        vol.shape = tuple(int(s) for s in cv.volume_size[::-1])
        nc = int(cv.num_channels)
        vol.channels = None if nc == 1 else nc
        vol.dtype = np.dtype(cv.data_type)
        vol.chunks = tuple(int(c) for c in cv.underlying[::-1])
        vol.shards = None
        vol.writable = mode != "r"
        return vol

    @classmethod
    def open(cls, url: str, mode: str = "r") -> PrecomputedVolume:
        if not precomputed_exists(url):
            raise InputError(f"no precomputed volume at {url} (no 'info' file); check the path")
        return cls._wrap(url, mode, open_cloudvolume(url))

    @classmethod
    def create(cls, url: str, layout: VolumeLayout) -> PrecomputedVolume:
        """A new precomputed layer (one scale, raw encoding; shards are not written)."""
        seg = layout.dtype in (np.dtype("uint32"), np.dtype("uint64"))
        vs = layout.voxel_size
        info = new_layer_info(
            num_channels=layout.channels or 1,
            layer_type="segmentation" if seg else "image",
            data_type=str(layout.dtype),
            encoding="raw",
            resolution=list(vs[::-1]),
            voxel_offset=[o // v for o, v in zip(layout.offset[::-1], vs[::-1], strict=True)],
            volume_size=list(layout.shape[::-1]),
            chunk_size=list(layout.chunks[::-1]),
        )
        cv = open_cloudvolume(url, info=info)
        cv.commit_info()
        vol = cls._wrap(url, "a", cv)
        if layout.attrs:
            vol.set_attrs(**layout.attrs)
        return vol

    @property
    def attrs(self) -> dict[str, Any]:
        return cloud_files(self.url).get_json(ATTRS_FILE) or {}

    def set_attrs(self, **attrs: Any) -> None:
        cloud_files(self.url).put_json(ATTRS_FILE, {**self.attrs, **attrs})

    def _slices(self, vroi: Roi) -> tuple[slice, ...]:
        b = [x + o for x, o in zip(vroi.begin, self._voxel_offset, strict=True)]
        e = [x + o for x, o in zip(vroi.end, self._voxel_offset, strict=True)]
        return tuple(slice(b[i], e[i]) for i in (2, 1, 0))

    def _read_voxels(self, vroi: Roi) -> np.ndarray:
        data = np.asarray(self._cv[self._slices(vroi)])  # x, y, z, c
        data = data.transpose(3, 2, 1, 0)
        return data[0] if self.channels is None else data

    def _write_voxels(self, vroi: Roi, data: np.ndarray) -> None:
        if self.channels is None:
            data = data[None]
        self._cv[self._slices(vroi)] = np.ascontiguousarray(data.transpose(3, 2, 1, 0))

    def nbytes_on_disk(self) -> int | None:
        cf = cloud_files(self.url)
        try:
            return int(sum(cf.size(list(cf.list())).values()))
        except Exception:
            return None
