"""A fragments block task that kills its worker process half-way through writing one shard
(once), for the killed-worker test of sharded outputs; importable by worker processes."""

from __future__ import annotations

import os

import numpy as np

from pipeline.geometry import Roi
from pipeline.io.volume import open_volume
from pipeline.runner.grid import Block
from pipeline.stages.fragments import FragmentsBlock

KILL_BLOCK = 1


def kill_flag(fragments_url: str) -> str:
    """The file that says the kill happened (beside the output's container)."""
    container = fragments_url.split(".zarr")[0]
    return f"{container}.killed"


class FragmentsKilledOnce(FragmentsBlock):
    """Fragments as usual, except the first attempt at block ``KILL_BLOCK``: it writes garbage
    into the first half of the block's shard and then ends its worker process."""

    def __call__(self, block: Block) -> None:
        flag = kill_flag(self.fragments_url)
        if block.block_id == KILL_BLOCK and not os.path.exists(flag):
            with open(flag, "w"):
                pass
            half = Roi(
                block.write_roi.begin, (block.write_roi.shape[0] // 2, *block.write_roi.shape[1:])
            )
            vol = open_volume(self.fragments_url, "a")
            vol.write(half, np.full(half.to_voxels(vol.voxel_size).shape, 7, np.uint64))
            os._exit(1)
        super().__call__(block)
