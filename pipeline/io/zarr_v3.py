"""Zarr v3 volumes with OME-Zarr (NGFF 0.5) multiscale metadata.

A volume URL names a group whose ``ome.multiscales`` lists its scale levels; level 0 (``s0``) is
the data. napari, neuroglancer and webknossos open such groups directly. A bare Zarr array (v2
or v3, e.g. written by another tool) opens too, with ``resolution``/``voxel_size`` and ``offset``
attributes read where present.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import zarr
import zarr.errors

from pipeline.errors import InputError
from pipeline.geometry import Coord, Roi
from pipeline.io.base import Volume, VolumeLayout
from pipeline.io.fs import filesystem, storage_options
from pipeline.io.ome import image_label, labels_group, level_path, multiscales

# errors of our own code, never a damaged store: they are raised as they are
PROGRAMMING_ERRORS = (IndexError, TypeError, AttributeError, NameError, AssertionError)


def _store_url(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


def _open_node(url: str, mode: str):
    try:
        return zarr.open(
            store=_store_url(url), mode=mode, storage_options=storage_options(url) or None
        )
    except FileNotFoundError:
        raise InputError(
            f"no Zarr volume at {url}: check the path (a Zarr group or array, e.g. out.zarr/raw)"
        ) from None


def zarr_exists(url: str) -> bool:
    fs, path = filesystem(url)
    return (
        fs.exists(path + "/zarr.json")
        or fs.exists(path + "/.zarray")
        or fs.exists(path + "/.zgroup")
    )


def ngff_metadata(
    name: str, voxel_size: Coord, offset: Coord, channels: int | None
) -> dict[str, Any]:
    """The ``ome`` attribute of a new volume: one scale level, ``s0``."""
    return multiscales(name, voxel_size, offset, channels)


def split_container(url: str) -> tuple[str, str]:
    """``s3://b/out.zarr/a/b`` -> (``s3://b/out.zarr``, ``a/b``); no ``.zarr`` part -> (url, "")."""
    m = re.match(r"^(?P<root>.*?\.zarr)(?:/(?P<inner>.*))?$", url.rstrip("/"))
    if not m:
        return url.rstrip("/"), ""
    return m.group("root"), (m.group("inner") or "").strip("/")


def _ensure_parent_groups(url: str) -> None:
    """Make the container and every group above the new volume, so viewers can browse to it."""
    root, inner = split_container(url)
    if not inner:
        return
    opts = storage_options(url) or None
    parts = inner.split("/")[:-1]
    for i in range(len(parts) + 1):
        path = "/".join([root, *parts[:i]])
        if not zarr_exists(path):
            zarr.open_group(store=_store_url(path), mode="a", zarr_format=3, storage_options=opts)


class ZarrVolume(Volume):
    format = "zarr"

    def __init__(
        self, url: str, mode: str, group, array, voxel_size: Coord, offset: Coord, channels
    ):
        self.url, self.mode = url, mode
        self._group, self._array = group, array
        self.channels = channels
        self.shape = tuple(int(s) for s in array.shape[-3:])
        self.dtype = np.dtype(array.dtype)
        self.voxel_size, self.offset = voxel_size, offset
        self.chunks = tuple(int(c) for c in array.chunks[-3:])
        shards = getattr(array, "shards", None)
        self.shards = tuple(int(s) for s in shards[-3:]) if shards else None
        self.writable = mode != "r"

    @classmethod
    def open(cls, url: str, mode: str = "r") -> ZarrVolume:
        url = url.rstrip("/")
        node = _open_node(url, "r" if mode == "r" else "r+")
        if isinstance(node, zarr.Group):
            ome = node.attrs.get("ome") or {}
            multiscales = ome.get("multiscales") or node.attrs.get("multiscales")
            if not multiscales:
                names = sorted(k for k, _ in node.arrays())
                raise InputError(
                    f"{url} is a Zarr group without OME-Zarr multiscales metadata; name one of its "
                    f"arrays in the URL, e.g. {url}/{names[0] if names else '<array>'}"
                )
            ms = multiscales[0]
            dataset = ms["datasets"][0]
            try:
                array = node[dataset["path"]]
            except KeyError:
                raise InputError(
                    f"{url}: multiscale level {dataset['path']!r} is missing"
                ) from None
            axes = [a["name"] if isinstance(a, dict) else a for a in ms.get("axes", [])]
            scale, translation = None, None
            for t in dataset.get("coordinateTransformations", []):
                if t["type"] == "scale":
                    scale = t["scale"]
                elif t["type"] == "translation":
                    translation = t["translation"]
            spatial = len(axes) - (1 if axes and axes[0] == "c" else 0) if axes else array.ndim
            voxel_size = tuple(int(round(s)) for s in (scale or [1] * array.ndim)[-3:])
            offset = tuple(int(round(t)) for t in (translation or [0] * array.ndim)[-3:])
            channels = int(array.shape[0]) if array.ndim == 4 else None
            if spatial != 3 or array.ndim not in (3, 4):
                raise InputError(f"{url}: expected 3 spatial axes (z, y, x), found axes {axes}")
            return cls(url, mode, node, array, voxel_size, offset, channels)
        array = node
        if array.ndim not in (3, 4):
            raise InputError(
                f"{url}: expected a 3D (z, y, x) or 4D (c, z, y, x) array, got {array.ndim} dimensions "
                f"(shape {array.shape})"
            )
        attrs = dict(array.attrs)
        voxel_size = tuple(
            int(v) for v in attrs.get("voxel_size", attrs.get("resolution", (1, 1, 1)))
        )
        offset = tuple(int(v) for v in attrs.get("offset", (0, 0, 0)))
        channels = int(array.shape[0]) if array.ndim == 4 else None
        return cls(url, mode, None, array, voxel_size, offset, channels)

    @classmethod
    def create(cls, url: str, layout: VolumeLayout, labels: bool = False) -> ZarrVolume:
        """A new Zarr v3 group with the array ``s0`` and OME-Zarr metadata (``labels``: with
        ``image-label`` metadata, for fragments and segmentations)."""
        url = url.rstrip("/")
        opts = storage_options(url) or None
        _ensure_parent_groups(url)
        try:
            group = zarr.open_group(
                store=_store_url(url), mode="w-", zarr_format=3, storage_options=opts
            )
        except (zarr.errors.ContainsGroupError, zarr.errors.ContainsArrayError, FileExistsError):
            raise InputError(
                f"{url} already exists; remove it or choose another output URL"
            ) from None
        channels = layout.channels
        lead = () if channels is None else (channels,)
        array = group.create_array(
            level_path(0),
            shape=(*lead, *layout.shape),
            dtype=layout.dtype,
            chunks=(*lead, *layout.chunks),
            shards=(*lead, *layout.shards) if layout.shards else None,
            fill_value=0,
            dimension_names=(("c",) if channels is not None else ()) + ("z", "y", "x"),
        )
        name = url.rsplit("/", 1)[-1]
        ome = ngff_metadata(name, layout.voxel_size, layout.offset, channels)
        if labels:
            ome["image-label"] = image_label()
        group.attrs.update({"ome": ome, **(layout.attrs or {})})
        return cls(url, "a", group, array, layout.voxel_size, layout.offset, channels)

    @property
    def attrs(self) -> dict[str, Any]:
        node = self._group if self._group is not None else self._array
        return {k: v for k, v in node.attrs.items() if k != "ome"}

    def set_attrs(self, **attrs: Any) -> None:
        if not self.writable:
            super().set_attrs(**attrs)
        node = self._group if self._group is not None else self._array
        node.attrs.update(attrs)

    def _index(self, vroi: Roi) -> tuple[slice, ...]:
        lead = () if self.channels is None else (slice(None),)
        return (*lead, *vroi.to_slices())

    def _read_voxels(self, vroi: Roi) -> np.ndarray:
        try:
            return np.asarray(self._array[self._index(vroi)])
        except PROGRAMMING_ERRORS:
            raise
        except Exception as e:
            damaged = self.damaged_chunks(vroi)
            if not damaged:
                raise
            raise InputError(
                f"{self.url}: stored chunk(s) {', '.join(damaged)} cannot be decoded "
                f"({type(e).__name__}: {e}); the data is damaged: restore the chunk(s) from a "
                "copy, or write the volume again"
            ) from None

    def damaged_chunks(self, vroi: Roi) -> list[str]:
        """The store keys of the chunks under ``vroi`` that fail to decode (read one by one)."""
        grid = tuple(int(c) for c in self._array.chunks[-3:])
        lead = () if self.channels is None else (0,)
        first = [b // g for b, g in zip(vroi.begin, grid, strict=True)]
        last = [(e - 1) // g for e, g in zip(vroi.end, grid, strict=True)]
        damaged = []
        for index in itertools.product(
            *(range(a, b + 1) for a, b in zip(first, last, strict=True))
        ):
            box = Roi.from_bounds(
                [i * g for i, g in zip(index, grid, strict=True)],
                [min((i + 1) * g, s) for i, g, s in zip(index, grid, self.shape, strict=True)],
            )
            try:
                self._array[self._index(box)]
            except PROGRAMMING_ERRORS:
                raise
            except Exception:
                key = "/".join(["c", *map(str, (*lead, *index))])
                damaged.append(f"{self._array.store_path}/{key}")
        return damaged

    def _write_voxels(self, vroi: Roi, data: np.ndarray) -> None:
        self._array[self._index(vroi)] = data

    def nbytes_on_disk(self) -> int | None:
        fs, path = filesystem(self.url)
        try:
            return int(fs.du(path))
        except Exception:
            return None


def _open_group(url: str):
    node = _open_node(url, "r+")
    if not isinstance(node, zarr.Group):
        raise InputError(
            f"{url} is a bare Zarr array; scale levels need a volume group (s0, s1, ...)"
        )
    return node


def open_level(url: str, level: int, mode: str = "r"):
    """The zarr array of scale level ``level`` (``s<level>``) of the volume at ``url``."""
    return _open_node(f"{url.rstrip('/')}/{level_path(level)}", mode)


def create_level(
    url: str, level: int, shape: Sequence[int], chunks: Sequence[int], shards: Sequence[int] | None
):
    """Create scale level ``level`` beside ``s0`` (same dtype and channels), or reopen it when it
    exists with this shape (a resumed run)."""
    group = _open_group(url.rstrip("/"))
    base = group[level_path(0)]
    lead = tuple(int(c) for c in base.shape[:-3])
    name = level_path(level)
    if name in group:
        array = group[name]
        if tuple(array.shape) != (*lead, *shape):
            raise InputError(
                f"{url}/{name} exists with shape {tuple(array.shape)}, but level {level} of this "
                f"volume needs {(*lead, *shape)}; remove {url}/{name} and run again"
            )
        return array
    return group.create_array(
        name,
        shape=(*lead, *shape),
        dtype=base.dtype,
        chunks=(*lead, *chunks),
        shards=(*lead, *shards) if shards else None,
        fill_value=0,
        dimension_names=base.metadata.dimension_names,
    )


def set_levels(url: str, factors: Sequence[Sequence[int]]) -> None:
    """List the scale levels of the volume at ``url`` in its ``ome.multiscales``: one per
    cumulative factor (level 0 first); the rest of its ``ome`` attribute (``image-label``) stays."""
    vol = ZarrVolume.open(url)
    group = _open_group(vol.url)
    ome = dict(group.attrs.get("ome") or {})
    name = (ome.get("multiscales") or [{}])[0].get("name") or vol.url.rsplit("/", 1)[-1]
    fresh = multiscales(name, vol.voxel_size, vol.offset, vol.channels, factors)
    group.attrs["ome"] = {**ome, **fresh}


def set_image_label(url: str, source_image: str | None = None) -> None:
    """Mark the volume at ``url`` as a label image (``ome.image-label``) of ``source_image`` (a
    path relative to the volume, e.g. ``../../``); the rest of its ``ome`` attribute stays."""
    group = _open_group(url.rstrip("/"))
    ome = dict(group.attrs.get("ome") or {})
    group.attrs["ome"] = {**ome, "image-label": image_label(source_image)}


def list_labels(url: str, names: Sequence[str]) -> list[str]:
    """Create the ``labels`` group ``url`` of an image, or add ``names`` to the label images it
    lists (its ``ome.labels``; the names listed before stay first). Returns the names listed."""
    url = url.rstrip("/")
    opts = storage_options(url) or None
    group = zarr.open_group(store=_store_url(url), mode="a", zarr_format=3, storage_options=opts)
    listed = list((group.attrs.get("ome") or {}).get("labels") or [])
    listed += [n for n in names if n not in listed]
    group.attrs["ome"] = labels_group(listed)
    return listed


def chunk_grid_check(vol: Volume, block_shape_nm: Sequence[int]) -> None:
    """Refuse block shapes that would make two blocks write one chunk (or shard)."""
    grid = vol.chunk_roi_shape
    if any(b % g for b, g in zip(block_shape_nm, grid, strict=True)):
        raise InputError(
            f"block shape {tuple(block_shape_nm)} nm is not a multiple of the output's write grid "
            f"{grid} nm ({'shards' if vol.shards else 'chunks'} of {vol.shards or vol.chunks} voxels) "
            f"of {vol.url}; choose a multiple"
        )
