"""Load the compiled (numba) kernels of the segmentation stages into a process ahead of its first
block (watershed, region graph, agglomeration, contingency tables): from the on-disk cache this takes about 0.3 s per process (compiling them, on the first
run after an install or a change, some seconds), and the table I/O (pyarrow's Parquet modules are
imported on first use: another 0.2 s). Benchmarks call it on every worker as part of the
start-up, like the imports."""

from __future__ import annotations

import tempfile

import numpy as np

from pipeline.io.tables import read_table, write_table
from pipeline.seg.agglomeration import Scoring, agglomerate
from pipeline.seg.contacts import block_contacts
from pipeline.seg.contingency import pair_counts
from pipeline.seg.valuerange import value_range
from pipeline.seg.watershed import FragmentParams, fragment_basins


def warm() -> None:
    """Run the fragments, region-graph, agglomeration and contingency kernels once on a tiny block, and
    write and read back a tiny Parquet table."""
    rng = np.random.default_rng(0)
    boundary = rng.random((12, 12, 12)).astype(np.float32)
    value_range(boundary)
    basins = fragment_basins(boundary, FragmentParams(min_size=4))
    labels = np.take(np.arange(len(basins.rep), dtype=np.uint64), basins.labels)
    _, edges = block_contacts(labels, boundary, 8, (11, 11, 11))
    pair_counts(labels, labels, skip_b_zero=True)
    u, v = np.array([0, 1, 0]), np.array([1, 2, 2])
    agglomerate(
        3, u, v, np.ones(3), np.array([0.1, 0.2, 0.3]), np.ones((3, 2)), Scoring("quantile")
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_table(f"{tmp}/edges.parquet", edges)
        read_table(f"{tmp}/edges.parquet")
