"""Load the compiled (numba) kernels of the segmentation stages into a process ahead of its first
block: from the on-disk cache this takes about 0.3 s per process (compiling them, on the first
run after an install or a change, some seconds). Benchmarks call it on every worker as part of
the start-up, like the imports."""

from __future__ import annotations

import numpy as np


def warm() -> None:
    """Run the fragments and region-graph kernels once on a tiny block."""
    from .contacts import block_contacts
    from .valuerange import value_range
    from .watershed import FragmentParams, fragment_basins

    rng = np.random.default_rng(0)
    boundary = rng.random((12, 12, 12)).astype(np.float32)
    value_range(boundary)
    basins = fragment_basins(boundary, FragmentParams(min_size=4))
    labels = np.take(np.arange(len(basins.rep), dtype=np.uint64), basins.labels)
    block_contacts(labels, boundary, 8, (11, 11, 11))
