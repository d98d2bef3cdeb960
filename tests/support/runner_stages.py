"""Small stages for runner tests; importable by worker processes and by a client subprocess."""

from __future__ import annotations

import os
import sys
import time
import uuid

import numpy as np

from pipeline.geometry import Roi
from pipeline.io.volume import create_volume, open_volume
from pipeline.runner.blockwise import Block, BlockTask, run_blockwise


def pattern(roi: Roi) -> np.ndarray:
    z, y, x = np.meshgrid(
        *[np.arange(b, e) for b, e in zip(roi.begin, roi.end, strict=True)], indexing="ij"
    )
    return ((z * 7 + y * 3 + x) % 251).astype(np.uint8)


class WritePattern:
    """Writes a deterministic pattern; logs each execution; optionally sleeps or fails."""

    def __init__(
        self,
        dst: str,
        log_dir: str | None = None,
        delay: float = 0.0,
        fail_block: int | None = None,
        hang_block: int | None = None,
    ):
        self.dst, self.log_dir, self.delay = dst, log_dir, delay
        self.fail_block, self.hang_block = fail_block, hang_block

    def __call__(self, block: Block) -> None:
        if block.block_id == self.fail_block:
            if self.log_dir:  # count the attempts
                with open(os.path.join(self.log_dir, f"failed-{uuid.uuid4().hex}"), "w"):
                    pass
            raise RuntimeError(f"synthetic failure in block {block.block_id}")
        if block.block_id == self.hang_block:
            time.sleep(3)
        time.sleep(self.delay)
        open_volume(self.dst, "a").write(block.write_roi, pattern(block.write_roi))
        if self.log_dir:
            with open(os.path.join(self.log_dir, f"{block.block_id}-{uuid.uuid4().hex}"), "w"):
                pass


def make_output(url: str, shape=(32, 32, 32), chunks=(8, 8, 8)):
    return create_volume(url, shape, "uint8", (1, 1, 1), chunks=chunks, exist_ok=True)


def make_task(url: str, process, blocks_per_task: int | None = 1, params=None, **kw) -> BlockTask:
    vol = open_volume(url)
    return BlockTask(
        "pattern",
        vol.roi,
        (8, 8, 8),
        process,
        done_url=url,
        voxel_size=(1, 1, 1),
        write_grid=vol.chunk_roi_shape,
        blocks_per_task=blocks_per_task,
        params=params or {"v": 1},
        **kw,
    )


if __name__ == "__main__":  # the client process that a test kills
    url, log_dir, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    client = Client(cluster)
    make_output(url)
    run_blockwise(make_task(url, WritePattern(url, log_dir, delay)), client, progress=False)
