"""The proofreading tests' world: fragments and region graph of 6 synthetic neurons, with a
starting lookup table that merges neurons 1 and 2 into one segment (a merge error) and cuts
neuron 3 into two segments (a split error)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.lut import Lut
from tests.support.export_data import neurons_and_fragments, write_zarr


def proofread_world(tmp: Path, client: Any) -> dict[str, Any]:
    """Write the volumes and the region graph under ``tmp``; return what the tests look at."""
    from pipeline.stages.graph import run_graph

    neurons, fragments, boundary = neurons_and_fragments()
    frag_url = write_zarr(tmp / "in.zarr" / "fragments", fragments, chunks=(16, 24, 24))
    bnd_url = write_zarr(tmp / "in.zarr" / "boundary", boundary, chunks=(16, 24, 24))
    root = str(tmp / "tables")
    run_graph(frag_url, bnd_url, root, block_shape=(16, 24, 24), client=client, progress=False)
    ids = np.unique(fragments)
    neuron_of = {int(f): int(neurons[fragments == f][0]) for f in ids}
    group = {f: (1 if n == 2 else n) for f, n in neuron_of.items()}  # 1 + 2 merged
    n3 = sorted(f for f, n in neuron_of.items() if n == 3)
    for f in n3[: len(n3) // 2]:
        group[f] = 30  # neuron 3 in two pieces
    seg_of_group: dict[int, int] = {}
    for f in sorted(group):
        seg_of_group.setdefault(group[f], f)  # segment id = smallest fragment id, as `segment`
    lut = Lut.from_arrays(ids, np.array([seg_of_group[group[int(f)]] for f in ids], np.uint64))
    return {
        "tmp": tmp,
        "neurons": neurons,
        "fragments": fragments,
        "pieces": lut.lookup(fragments.ravel()).reshape(fragments.shape),
        "frag_url": frag_url,
        "root": root,
        "lut": lut,
        "neuron_of": neuron_of,
        "seg_of_group": seg_of_group,
        "seg_of": seg_of_group,
    }
