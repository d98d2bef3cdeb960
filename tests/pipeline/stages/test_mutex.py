"""The mutex-watershed path on noisy affinities of synthetic cells: the clustering recovers the
cells, ids are unique per block, and blockwise fragments stitched by the region graph and
agglomeration equal a whole-volume run (VI against each other below 0.05)."""

from __future__ import annotations

import numpy as np
import pytest

from models.volumetric.targets import affinities, long_range_offsets
from pipeline.errors import InputError
from pipeline.evaluate import evaluate_arrays
from pipeline.io.volume import create_volume, open_volume
from pipeline.seg.ids import id_blocks
from pipeline.seg.mutex import MutexParams, mutex_segments
from pipeline.stages.agglomerate import run_agglomerate
from pipeline.stages.graph import run_graph
from pipeline.stages.mutex import run_mutex_fragments
from pipeline.stages.relabel import run_relabel
from pipeline.stages.segment import run_segment
from tests.support.labels import voronoi
from workflows.cli.app import main

SHAPE = (32, 48, 48)
BLOCK = (16, 24, 24)
OFFSETS = long_range_offsets(3, (1, 4))


def _noisy_affinities(labels: np.ndarray, seed: int = 3) -> np.ndarray:
    """Affinities of the cells (walls count as their own object) with 20 % noise."""
    cells = np.where(
        labels == 0, labels.max() + 1 + np.arange(labels.size).reshape(labels.shape), labels
    )
    affs, _ = affinities(cells, OFFSETS, ignore_label=None)
    rng = np.random.default_rng(seed)
    noisy = 0.8 * affs + 0.2 * rng.random(affs.shape, dtype=np.float32)
    return np.clip(noisy * 255 + 0.5, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    d = tmp_path_factory.mktemp("mutex")
    labels, _ = voronoi(SHAPE, 12, seed=5)
    affs = _noisy_affinities(labels)
    vol = create_volume(
        str(d / "in.zarr/affs"),
        SHAPE,
        np.uint8,
        (4, 4, 4),
        chunks=(16, 24, 24),
        channels=len(OFFSETS),
        attrs={"offsets": [list(o) for o in OFFSETS]},
    )
    vol.write(vol.roi, affs)
    return d, labels, affs, vol.url


def test_mutex_recovers_the_cells_from_noisy_affinities(cells):
    _, labels, affs, _ = cells
    seg = mutex_segments(affs.astype(np.float32) / 255, OFFSETS)
    score = evaluate_arrays(seg, labels)  # walls (label 0) are ignored
    assert score["vi_sum"] < 0.3, score
    # higher biases make more edges repulsive: more splits
    split = mutex_segments(affs.astype(np.float32) / 255, OFFSETS, MutexParams(0.95, 0.95))
    assert evaluate_arrays(split, labels)["vi_split"] > score["vi_split"]


def _stitched(d, frag_url: str, aff_url: str, client, name: str) -> np.ndarray:
    root = str(d / f"{name}_tables")
    run_graph(frag_url, aff_url, root, client=client, progress=False)
    run_agglomerate(root, client=client, progress=False)
    (summary,) = run_segment(root, [0.5])
    out = str(d / f"out.zarr/{name}")
    run_relabel(frag_url, summary["lut"], out, client=client, progress=False)
    return open_volume(out).read()


def test_blockwise_mutex_equals_whole_volume(cells, client):
    d, labels, _, url = cells
    whole = str(d / "out.zarr/whole_fragments")
    blocks = str(d / "out.zarr/block_fragments")
    run_mutex_fragments(url, whole, block_shape=SHAPE, client=client, progress=False)
    report = run_mutex_fragments(url, blocks, block_shape=BLOCK, client=client, progress=False)
    assert report.blocks_total == 8
    frag = open_volume(blocks).read()
    # every id decodes to a voxel of the block that holds it
    for z in range(0, SHAPE[0], BLOCK[0]):
        for y in range(0, SHAPE[1], BLOCK[1]):
            for x in range(0, SHAPE[2], BLOCK[2]):
                sub = frag[z : z + BLOCK[0], y : y + BLOCK[1], x : x + BLOCK[2]]
                owner = id_blocks(np.unique(sub), SHAPE, BLOCK)
                grid = (SHAPE[1] // BLOCK[1], SHAPE[2] // BLOCK[2])
                here = (
                    (z // BLOCK[0]) * grid[0] * grid[1] + (y // BLOCK[1]) * grid[1] + x // BLOCK[2]
                )
                assert (owner == here).all()
    a = _stitched(d, whole, url, client, "whole")
    b = _stitched(d, blocks, url, client, "blocks")
    # against each other inside the cells (the one-voxel walls are objects of their own here)
    assert evaluate_arrays(b, np.where(labels > 0, a, 0))["vi_sum"] < 0.05
    assert evaluate_arrays(b, labels)["vi_sum"] < 0.05


def test_mutex_refuses_a_boundary_map(tmp_path):
    vol = create_volume(str(tmp_path / "b.zarr/boundary"), (8, 8, 8), np.float32, (4, 4, 4))
    vol.write(vol.roi, np.zeros((8, 8, 8), np.float32))
    with pytest.raises(InputError, match="offsets"):
        run_mutex_fragments(vol.url, str(tmp_path / "b.zarr/fragments"), progress=False)


def test_segment_command_takes_the_mutex_path(cells, tmp_path, capsys):
    _, labels, _, url = cells
    out = str(tmp_path / "m.zarr/seg")
    argv = ["segment", "--boundaries", url, "--output", out, "--method", "mutex"]
    assert main([*argv, "--block", "16,24,24", "--threshold", "0.5", "--cluster", "threads:2"]) == 0
    frag = open_volume(f"{out}_fragments")
    assert frag.attrs["petaseg"]["params"]["method"] == "mutex"
    assert evaluate_arrays(open_volume(out).read(), labels)["vi_sum"] < 0.05
    bad = ["segment", "--boundaries", url, "--output", str(tmp_path / "b.zarr/s")]
    assert main([*bad, "--method", "mws", "--cluster", "threads:1"]) == 2
    assert "--method" in capsys.readouterr().err


def test_watershed_runs_hash_as_before_the_mutex_options():
    from workflows.schema import FragmentsStage

    old = ["threshold", "sigma_seeds", "sigma_weights", "alpha", "min_size", "mode"]
    assert list(FragmentsStage().hashed()) == [*old, "block", "context"]  # earlier runs resume
    mutex = FragmentsStage(method="mutex", bias_long=0.7).hashed()
    assert mutex["bias_long"] == 0.7 and "sigma_seeds" not in mutex


def test_fragments_of_another_method_are_not_resumed(cells, client):
    from pipeline.stages.fragments import run_fragments

    d, _, _, url = cells
    frag = str(d / "out.zarr/block_fragments")  # mutex fragments written by the test above
    run_mutex_fragments(url, frag, block_shape=BLOCK, client=client, progress=False)
    with pytest.raises(InputError, match="another block grid, method or tool"):
        run_fragments(url, frag, block_shape=BLOCK, client=client, progress=False)
