"""The blockwise runner: a stage as a function of one block, run over a lazy block grid as
bounded, resumable Dask work (grouped tasks, done markers, retries, timeouts, progress, and a
per-worker cache so a worker opens a volume or loads a model once)."""

from pipeline.runner.blockwise import BlockTask, RunReport, current_client, run_blockwise
from pipeline.runner.cache import cached
from pipeline.runner.done import DoneMarkers, markers_root, params_hash, progress_of
from pipeline.runner.grid import Block, BlockGrid

__all__ = [
    "Block",
    "BlockGrid",
    "BlockTask",
    "DoneMarkers",
    "RunReport",
    "cached",
    "current_client",
    "markers_root",
    "params_hash",
    "progress_of",
    "run_blockwise",
]
