"""Read-only HDF5 import (``file.h5/volumes/raw``), CREMI-style ``resolution``/``offset`` attributes."""

from __future__ import annotations

import os
import re

import h5py
import numpy as np

from pipeline.errors import InputError
from pipeline.geometry import Roi
from pipeline.io.base import Volume, check_dtype

H5_URL = re.compile(r"^(?P<file>.+?\.(?:h5|hdf5|hdf))(?:/(?P<dataset>.*))?$")


class Hdf5Volume(Volume):
    format = "hdf5"

    @classmethod
    def open(cls, url: str, mode: str = "r") -> Hdf5Volume:
        m = H5_URL.match(url)
        path, dataset = m.group("file"), (m.group("dataset") or "").strip("/")
        if path.startswith("file://"):
            path = path[len("file://") :]
        if not os.path.exists(path):
            raise InputError(f"{url}: file {path} does not exist; check the path")
        if not dataset:
            raise InputError(f"{url}: name the dataset inside the file, e.g. {path}/volumes/raw")
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise InputError(f"{url}: {path} is not a readable HDF5 file ({e})") from None
        if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
            found: list[str] = []
            f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
            raise InputError(f"{url}: no dataset {dataset!r} in {path}; it has: {', '.join(found)}")
        ds = f[dataset]
        if ds.ndim not in (3, 4):
            raise InputError(
                f"{url}: expected a 3D (z, y, x) or 4D (c, z, y, x) dataset, got shape {ds.shape}"
            )
        vol = cls()
        vol.url, vol.mode, vol._file, vol._ds = url, "r", f, ds
        vol.channels = int(ds.shape[0]) if ds.ndim == 4 else None
        vol.shape = tuple(int(s) for s in ds.shape[-3:])
        vol.dtype = check_dtype(ds.dtype, url)
        res = ds.attrs.get("resolution", ds.attrs.get("voxel_size", (1, 1, 1)))
        vol.voxel_size = tuple(int(round(float(v))) for v in res)
        vol.offset = tuple(int(round(float(v))) for v in ds.attrs.get("offset", (0, 0, 0)))
        vol.chunks = tuple(int(c) for c in (ds.chunks or ds.shape)[-3:])
        vol.shards = None
        return vol

    @property
    def attrs(self) -> dict:
        return {
            k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self._ds.attrs.items()
        }

    def _read_voxels(self, vroi: Roi) -> np.ndarray:
        lead = () if self.channels is None else (slice(None),)
        return np.asarray(self._ds[(*lead, *vroi.to_slices())])

    def nbytes_on_disk(self) -> int | None:
        return os.path.getsize(self._file.filename)
