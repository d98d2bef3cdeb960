"""Read-only TIFF stacks: one multi-page file, or a folder of single-section files (sorted by name).

Sections are read one page at a time, so a ROI costs memory for its own sections only.
"""

from __future__ import annotations

import os

import numpy as np
import tifffile

from pipeline.errors import InputError
from pipeline.geometry import Roi
from pipeline.io.base import Volume, check_dtype


class TiffVolume(Volume):
    format = "tiff"

    @classmethod
    def open(cls, url: str, mode: str = "r") -> TiffVolume:
        path = url[len("file://") :] if url.startswith("file://") else url
        if os.path.isdir(path):
            files = sorted(
                os.path.join(path, f)
                for f in os.listdir(path)
                if f.lower().endswith((".tif", ".tiff"))
            )
            if not files:
                raise InputError(f"{url}: the folder holds no .tif files")
        elif os.path.exists(path):
            files = [path]
        else:
            raise InputError(f"{url}: no such TIFF file or folder; check the path")
        vol = cls()
        vol.url, vol.mode, vol._files = url, "r", files
        with tifffile.TiffFile(files[0]) as tf:
            page = tf.pages[0]
            n = len(tf.pages) if len(files) == 1 else len(files)
            shape2d, dtype = page.shape, page.dtype
            scale = (tf.imagej_metadata or {}).get("spacing")
        if len(shape2d) != 2:
            raise InputError(f"{url}: expected grayscale sections, got pages of shape {shape2d}")
        vol.shape = (n, int(shape2d[0]), int(shape2d[1]))
        vol.dtype = check_dtype(dtype, url)
        vol.channels = None
        vol.voxel_size = (int(round(scale)) if scale else 1, 1, 1)
        vol.offset = (0, 0, 0)
        vol.chunks = (1, *vol.shape[1:])
        vol.shards = None
        return vol

    def _section(self, z: int) -> np.ndarray:
        if len(self._files) == 1:
            return tifffile.imread(self._files[0], key=z)
        return tifffile.imread(self._files[z])

    def _read_voxels(self, vroi: Roi) -> np.ndarray:
        (z0, y0, x0), (z1, y1, x1) = vroi.begin, vroi.end
        return np.stack([self._section(z)[y0:y1, x0:x1] for z in range(z0, z1)]).astype(self.dtype)

    def nbytes_on_disk(self) -> int | None:
        return sum(os.path.getsize(f) for f in self._files)
