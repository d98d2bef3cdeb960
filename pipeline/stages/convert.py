"""Copy a volume blockwise from any readable URL into Zarr or precomputed, voxel for voxel."""

from __future__ import annotations

import os
from collections.abc import Sequence

from distributed import Client

from pipeline.errors import InputError
from pipeline.geometry import Roi
from pipeline.io.volume import create_volume, open_input, open_volume
from pipeline.provenance import provenance
from pipeline.runner.blockwise import Block, BlockTask, RunReport, run_blockwise
from pipeline.runner.cache import cached


class CopyBlock:
    """Reads the write ROI from ``src`` and writes it to ``dst`` (no context needed)."""

    def __init__(self, src: str, dst: str):
        self.src, self.dst = src, dst

    def __call__(self, block: Block) -> None:
        src = cached(f"vol:r:{self.src}", lambda: open_volume(self.src))
        dst = cached(f"vol:a:{self.dst}", lambda: open_volume(self.dst, mode="a"))
        dst.write(block.write_roi, src.read(block.write_roi))


def default_block_shape(grid: Sequence[int], shape: Sequence[int], target: int = 1 << 22) -> tuple:
    """The smallest multiple of the write grid (voxels) near ``target`` voxels per block."""
    block = list(grid)
    while True:
        grown = False
        for axis in sorted(range(3), key=lambda a: block[a]):
            if block[axis] >= shape[axis] or block[0] * block[1] * block[2] * 2 > target:
                continue
            block[axis] *= 2
            grown = True
            break
        if not grown:
            return tuple(block)


def crop_roi(src, roi: Roi, src_url: str) -> Roi:
    """``roi`` (voxels from the source's first voxel) in world units, refused when it is empty
    or reaches outside the source."""
    if roi.ndim != 3 or any(s <= 0 for s in roi.shape):
        raise InputError(f"--roi {_roi_text(roi)}: give a non-empty z0:z1,y0:y1,x0:x1 box")
    if any(b < 0 or b + s > n for b, s, n in zip(roi.begin, roi.shape, src.shape, strict=True)):
        raise InputError(
            f"--roi {_roi_text(roi)} reaches outside {src_url} (shape {tuple(src.shape)}); "
            "choose a box inside the volume"
        )
    vs = src.voxel_size
    return Roi(
        tuple(o + b * v for o, b, v in zip(src.offset, roi.begin, vs, strict=True)),
        tuple(s * v for s, v in zip(roi.shape, vs, strict=True)),
    )


def voxel_roi_of(roi_nm: Roi, src, text: str) -> Roi:
    """``roi_nm`` (world coordinates in nm, as ``src.roi``) as voxels from the source's first
    voxel, refused when it does not fall on the voxel grid."""
    vs, off = src.voxel_size, src.offset
    begin = [b - o for b, o in zip(roi_nm.begin, off, strict=True)]
    if any(v % s for v, s in zip([*begin, *roi_nm.shape], [*vs, *vs], strict=True)):
        raise InputError(
            f"--roi-nm {text}: the box must fall on the voxel grid: its bounds minus the offset "
            f"{tuple(off)} nm must be multiples of the voxel size {tuple(vs)} nm"
        )
    return Roi(
        tuple(b // s for b, s in zip(begin, vs, strict=True)),
        tuple(n // s for n, s in zip(roi_nm.shape, vs, strict=True)),
    )


def _roi_text(roi: Roi | None) -> str | None:
    if roi is None:
        return None
    return ",".join(f"{b}:{b + s}" for b, s in zip(roi.begin, roi.shape, strict=True))


def convert(
    src_url: str,
    dst_url: str,
    chunks: Sequence[int] | None = None,
    shards: Sequence[int] | None = None,
    block: Sequence[int] | None = None,
    client: Client | None = None,
    progress: bool = True,
    roi: Roi | None = None,
) -> RunReport:
    """Copy ``src`` (or the part of it in ``roi``, voxels relative to its first voxel) into a
    new volume that keeps the source's world coordinates."""
    src = open_input(src_url, "convert")
    source = os.path.abspath(src_url) if "://" not in src_url else src_url  # recorded absolute
    total = src.roi if roi is None else crop_roi(src, roi, src_url)
    shape = tuple(s // v for s, v in zip(total.shape, src.voxel_size, strict=True))
    chunks = tuple(chunks or tuple(min(c, s) for c, s in zip((64, 64, 64), shape, strict=True)))
    dst = create_volume(
        dst_url,
        shape,
        src.dtype,
        src.voxel_size,
        total.begin,
        chunks=chunks,
        shards=shards,
        channels=src.channels,
        attrs={"petaseg": provenance("convert", {"source": source, "roi": _roi_text(roi)})},
        exist_ok=True,
        sources=[src_url],
    )
    grid_vox = tuple(g // v for g, v in zip(dst.chunk_roi_shape, dst.voxel_size, strict=True))
    block_vox = tuple(block) if block else default_block_shape(grid_vox, shape)
    if any(b % g for b, g in zip(block_vox, grid_vox, strict=True)):
        raise InputError(
            f"--block {block_vox} is not a multiple of the output's "
            f"{'shards' if dst.shards else 'chunks'} {grid_vox}; choose a multiple"
        )
    task = BlockTask(
        name="convert",
        total_roi=total,
        block_shape=tuple(b * v for b, v in zip(block_vox, src.voxel_size, strict=True)),
        process=CopyBlock(src.url, dst.url),
        done_url=dst.url,
        params={
            "source": source,
            "chunks": list(chunks),
            "shards": list(shards or []),
            "roi": _roi_text(roi),
        },
        voxel_size=src.voxel_size,
        write_grid=dst.chunk_roi_shape,
        grid_origin=dst.offset,
    )
    return run_blockwise(task, client=client, progress=progress)
