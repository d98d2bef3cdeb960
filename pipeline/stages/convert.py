"""Copy a volume blockwise from any readable URL into Zarr or precomputed, voxel for voxel."""

from __future__ import annotations

from collections.abc import Sequence

from ..blockwise import Block, BlockTask, RunReport, run_blockwise
from ..errors import InputError
from ..geometry import Roi
from ..provenance import provenance
from ..volume import create_volume, open_volume
from ..worker_cache import cached


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


def convert(
    src_url: str,
    dst_url: str,
    chunks: Sequence[int] | None = None,
    shards: Sequence[int] | None = None,
    block: Sequence[int] | None = None,
    client=None,
    progress: bool = True,
) -> RunReport:
    src = open_volume(src_url)
    chunks = tuple(chunks or tuple(min(c, s) for c, s in zip((64, 64, 64), src.shape, strict=True)))
    dst = create_volume(
        dst_url,
        src.shape,
        src.dtype,
        src.voxel_size,
        src.offset,
        chunks=chunks,
        shards=shards,
        channels=src.channels,
        attrs={"petaseg": provenance("convert", {"source": src_url})},
        exist_ok=True,
    )
    grid_vox = tuple(g // v for g, v in zip(dst.chunk_roi_shape, dst.voxel_size, strict=True))
    block_vox = tuple(block) if block else default_block_shape(grid_vox, src.shape)
    if any(b % g for b, g in zip(block_vox, grid_vox, strict=True)):
        raise InputError(
            f"--block {block_vox} is not a multiple of the output's "
            f"{'shards' if dst.shards else 'chunks'} {grid_vox}; choose a multiple"
        )
    task = BlockTask(
        name="convert",
        total_roi=Roi(src.roi.begin, src.roi.shape),
        block_shape=tuple(b * v for b, v in zip(block_vox, src.voxel_size, strict=True)),
        process=CopyBlock(src.url, dst.url),
        done_url=dst.url,
        params={"source": src_url, "chunks": list(chunks), "shards": list(shards or [])},
        voxel_size=src.voxel_size,
        write_grid=dst.chunk_roi_shape,
    )
    return run_blockwise(task, client=client, progress=progress)
