"""Multiscale Neuroglancer precomputed layers (image or segmentation), written blockwise.

A pass reads one level (the source volume for level 0, else a level of the layer itself) and
writes up to ``levels_per_pass`` levels above it from the same block, so every block reads its
input once. A block covers ``chunk x cumulative factor`` voxels of its input, hence every level
it writes is chunk-aligned and no two blocks write one chunk. Cells are anchored at the layer's
voxel offset, like cloud-volume's ``add_scale``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from distributed import Client

from pipeline.errors import InputError
from pipeline.geometry import Coord, Roi
from pipeline.io.cloud import cloudpath, new_layer_info, open_cloudvolume
from pipeline.io.volume import open_volume
from pipeline.lut import apply_lut, load_lut_cached
from pipeline.runner.blockwise import Block, BlockTask, RunReport, run_blockwise
from pipeline.runner.cache import cached
from pipeline.scales import Factor, cumulative, downsample_mean, downsample_mode


@dataclass(frozen=True)
class LayerGeometry:
    """Level 0 of a layer, zyx, voxels and nm."""

    shape: Coord
    voxel_size: Coord
    offset: Coord  # nm
    chunks: Coord

    @property
    def voxel_offset(self) -> Coord:
        return tuple(o // v for o, v in zip(self.offset, self.voxel_size, strict=True))


def create_layer(
    path: str,
    kind: str,
    dtype: np.dtype,
    geom: LayerGeometry,
    factors: Sequence[Factor],
    extra_info: dict | None = None,
) -> dict:
    """Write the ``info`` of a layer with one scale per level; returns it."""
    if kind not in ("image", "segmentation"):
        raise InputError(f"layer kind must be image or segmentation, got {kind!r}")
    dtype = np.dtype(dtype)
    if kind == "segmentation" and dtype not in (np.dtype("uint32"), np.dtype("uint64")):
        raise InputError(
            f"{path}: a segmentation layer needs uint32 or uint64 labels, got {dtype}; "
            "relabel the segmentation to uint64 first"
        )
    info = new_layer_info(
        num_channels=1,
        layer_type=kind,
        data_type=str(dtype),
        encoding="compressed_segmentation" if kind == "segmentation" else "raw",
        resolution=list(geom.voxel_size[::-1]),
        voxel_offset=list(geom.voxel_offset[::-1]),
        volume_size=list(geom.shape[::-1]),
        chunk_size=list(geom.chunks[::-1]),
    )
    cv = open_cloudvolume(path, info=info)
    for f in cumulative(factors)[1:]:
        cv.add_scale(list(f[::-1]), chunk_size=list(geom.chunks[::-1]))
    if extra_info:
        cv.info.update(extra_info)
    cv.commit_info()
    return cv.info


def level_geometry(info: dict, level: int) -> tuple[Coord, Coord, Coord]:
    """(shape, voxel size, voxel offset) of a level, zyx."""
    scale = info["scales"][level]
    shape = tuple(int(s) for s in scale["size"][::-1])
    res = tuple(int(round(float(r))) for r in scale["resolution"][::-1])
    off = tuple(int(o) for o in scale["voxel_offset"][::-1])
    return shape, res, off


class LevelSource:
    """Reads the input of a pass: level 0 from any petaseg volume URL (optionally through a
    fragment -> segment lookup table), a higher level from the layer itself."""

    def __init__(self, layer: str, level: int, volume_url: str | None, lut: str | None):
        self.layer, self.level, self.volume_url, self.lut = layer, level, volume_url, lut

    def read(self, roi: Roi, voxel_size: Coord) -> np.ndarray:
        if self.level == 0 and self.volume_url is not None:
            vol = cached(f"vol:r:{self.volume_url}", lambda: open_volume(self.volume_url))
            data = vol.read(roi)
            if self.lut is not None:
                data = apply_lut(data, load_lut_cached(self.lut))
            return data
        cv = cached(
            f"cv:{self.layer}:{self.level}", lambda: open_cloudvolume(self.layer, self.level)
        )
        v = roi.to_voxels(voxel_size)
        sl = tuple(slice(b, e) for b, e in zip(v.begin[::-1], v.end[::-1], strict=True))
        return np.asarray(cv[sl])[..., 0].transpose(2, 1, 0)


class PyramidBlock:
    """One block of a pass: read the input ROI, write level ``first`` (if ``write_first``) and
    the ``len(factors)`` levels above it."""

    def __init__(
        self,
        layer: str,
        kind: str,
        source: LevelSource,
        first: int,
        write_first: bool,
        factors: Sequence[Factor],
        info: dict,
        counter: Callable[[int, np.ndarray], None] | None = None,
    ):
        self.layer, self.kind, self.source, self.counter = layer, kind, source, counter
        self.first, self.write_first, self.factors = first, write_first, list(factors)
        self.geoms = [level_geometry(info, lv) for lv in range(len(info["scales"]))]

    def __call__(self, block: Block) -> None:
        _, res, off = self.geoms[self.first]
        data = self.source.read(block.write_roi, res)
        start = tuple(b // r - o for b, r, o in zip(block.write_roi.begin, res, off, strict=True))
        if self.write_first:
            self._write(self.first, start, data)
        if self.counter is not None:  # voxels per segment, for the objects' reduce step
            self.counter(block.block_id, data[self._inside(self.first, start, data.shape)])
        down = downsample_mode if self.kind == "segmentation" else downsample_mean
        for i, f in enumerate(self.factors):
            data = down(data, f)
            start = tuple(s // x for s, x in zip(start, f, strict=True))
            self._write(self.first + i + 1, start, data)

    def _inside(self, level: int, start: Coord, shape: Coord) -> tuple[slice, ...]:
        """The part of a block's array of ``shape`` at ``start`` that lies in the level."""
        size = self.geoms[level][0]
        return tuple(
            slice(0, max(0, min(d, n - s))) for s, d, n in zip(start, shape, size, strict=True)
        )

    def _write(self, level: int, start: Coord, data: np.ndarray) -> None:
        _, _, off = self.geoms[level]
        data = data[self._inside(level, start, data.shape)]
        end = tuple(s + d for s, d in zip(start, data.shape, strict=True))
        cv = cached(f"cv:{self.layer}:{level}", lambda: open_cloudvolume(self.layer, level))
        sl = tuple(
            slice(o + s, o + e) for s, e, o in zip(start[::-1], end[::-1], off[::-1], strict=True)
        )
        cv[sl] = data.transpose(2, 1, 0)[..., None]  # x, y, z, c: a view, no copy


def write_pyramid(
    layer: str,
    kind: str,
    info: dict,
    factors: Sequence[Factor],
    volume_url: str,
    lut: str | None = None,
    levels_per_pass: int = 2,
    client: Client | None = None,
    progress: bool = True,
    params: dict | None = None,
    counter: Callable[[int, np.ndarray], None] | None = None,
) -> list[RunReport]:
    """Fill every level of ``layer`` from ``volume_url`` (level 0) by blockwise passes;
    ``counter(block_id, labels)`` sees each block of level 0 (the first pass)."""
    reports = []
    chunks = tuple(int(c) for c in info["scales"][0]["chunk_sizes"][0][::-1])
    level = 0
    while level == 0 or level < len(factors):
        step = list(factors[level : level + levels_per_pass])
        shape, res, off = level_geometry(info, level)
        total = Roi(
            tuple(o * r for o, r in zip(off, res, strict=True)),
            tuple(s * r for s, r in zip(shape, res, strict=True)),
        )
        span = cumulative(step)[-1]
        block = tuple(c * f * r for c, f, r in zip(chunks, span, res, strict=True))
        source = LevelSource(layer, level, volume_url if level == 0 else None, lut)
        task = BlockTask(
            name=f"export-{kind}-l{level}",
            total_roi=total,
            block_shape=block,
            process=PyramidBlock(
                layer, kind, source, level, level == 0, step, info, counter if level == 0 else None
            ),
            done_url=cloudpath(layer),
            params={"source": volume_url, "lut": lut, "levels": len(factors) + 1, **(params or {})},
            voxel_size=res,
        )
        reports.append(run_blockwise(task, client=client, progress=progress))
        level += max(1, len(step))
        if not step:
            break
    return reports


def choose_chunks(shape: Sequence[int], chunks: Sequence[int] | None) -> Coord:
    """Chunks no larger than the volume; 64^3 by default."""
    want = tuple(chunks) if chunks else (64, 64, 64)
    return tuple(max(1, min(c, s)) for c, s in zip(want, shape, strict=True))
