"""Compiled agglomeration and cluster evaluation, each side by side with the version it replaced.

Agglomeration (one core, one process): the region graph of real FIB data. Fragments: the
watershed of the FIB boundary map (the stand-in ``clip((p99 - gauss(raw, 1)) / (p99 - p1), 0,
1)``, see ``benchmarks.inputs``; seeds without smoothing and ``min_size`` 10, so the graph is
fine) on the 160x250x250 volume, mirror-tiled ``TILES`` times (ids offset per tile), and the
region graph of the tiled volume with 16-bin histograms. ``agglomeration_edges_per_s``: edges /
seconds of ``agglomerate`` to the end (mean scoring; ``..._q50`` for the median), best of 5;
``reference_edges_per_s`` the pure-Python version (``tests/pipeline/seg/agglomeration_reference``)
on the same graph, once; ``speedup`` their ratio; ``identical``: the merge scores are equal.

Evaluation (2 worker processes, one thread each): the FIB supervoxels against its neuron ids,
mirror-tiled the same way, as uint64 Zarr volumes (64x128x128 chunks). ``evaluate_vps``: voxels
/ seconds of ``evaluate_volumes(..., client=)`` (cluster start and worker imports excluded),
best of 2; ``evaluate_local_vps`` the compiled tables in one process (no cluster);
``same_figures``: the two give identical scores. Side by side with the numpy (``np.unique``)
block tables that the compiled pass replaced, on the first blocks (raster order) that hold a
quarter of the voxels or more, reading excluded (CPU seconds): ``table_cpu_vps``, ``numpy_table_cpu_vps``, their ratio, and whether all
those blocks' tables are equal. Seconds are wall clock on a
shared machine; CPU seconds are reported beside them.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIB = REPO.parent / "shared" / "data" / "fib_medulla_flyem" / "fib_medulla_train.h5"
TILES = (1, 2, 2)


def mirror_tile(a: np.ndarray, tiles, label_offset: int = 0) -> np.ndarray:
    """``a`` repeated ``tiles`` times per axis, every other copy mirrored (so faces match);
    labels offset by ``label_offset`` per copy, so copies do not share ids."""
    out = np.empty(tuple(s * t for s, t in zip(a.shape, tiles, strict=True)), a.dtype)
    k = 0
    for i in range(tiles[0]):
        for j in range(tiles[1]):
            for m in range(tiles[2]):
                part = a[:: -1 if i % 2 else 1, :: -1 if j % 2 else 1, :: -1 if m % 2 else 1]
                if label_offset:
                    part = np.where(part != 0, part + k * label_offset, 0)
                z, y, x = i * a.shape[0], j * a.shape[1], m * a.shape[2]
                out[z : z + a.shape[0], y : y + a.shape[1], x : x + a.shape[2]] = part
                k += 1
    return out


def read_h5(name: str) -> np.ndarray:
    import h5py

    with h5py.File(FIB, "r") as f:
        return f[name][:]


def region_graph() -> dict:
    from benchmarks.correct_experiment import boundary_from_raw
    from pipeline.seg.rag import region_contacts
    from pipeline.seg.watershed import FragmentParams, fragments_from_boundary

    boundary = boundary_from_raw(read_h5("volumes/raw"))
    frag = fragments_from_boundary(boundary, FragmentParams(sigma_seeds=0, min_size=10))
    frag = mirror_tile(frag, TILES, int(frag.max()) + 1)
    edges = region_contacts(frag, mirror_tile(boundary, TILES), nbins=16)
    keep = edges["u"] != 0
    ids = np.unique(np.concatenate([edges["u"][keep], edges["v"][keep]]))
    return {
        "n": len(ids),
        "u": np.searchsorted(ids, edges["u"][keep]),
        "v": np.searchsorted(ids, edges["v"][keep]),
        "count": edges["count"][keep],
        "total": edges["sum"][keep],
        "hist": edges["hist"][keep],
        "voxels": int(frag.size),
    }


def _note(text: str) -> None:
    print(f"bench agglomeration: {text}", file=sys.stderr, flush=True)


def _timed(fn, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def agglomeration_speed() -> dict:
    from benchmarks.reference.agglomeration import agglomerate_reference
    from pipeline.seg.agglomeration import Scoring, agglomerate

    g = region_graph()
    _note(f"region graph: {len(g['u'])} edges")
    args = (g["n"], g["u"], g["v"], g["count"], g["total"], g["hist"])
    out: dict = {"graph_voxels": g["voxels"], "graph_nodes": g["n"], "graph_edges": len(g["u"])}
    agglomerate(*args, Scoring("mean"))  # load the kernels
    for name, scoring in (("", Scoring("mean")), ("_q50", Scoring("quantile", 0.5))):
        runs = [_timed(agglomerate, *args, scoring) for _ in range(5)]
        wall, cpu, scores = min(runs, key=lambda r: r[0])
        _note(f"compiled{name or '_mean'}: {len(g['u'])} edges in {wall:.2f} s")
        ref_wall, ref_cpu, ref = _timed(agglomerate_reference, *args, scoring)
        _note(f"reference{name or '_mean'}: {ref_wall:.2f} s")
        e = len(g["u"])
        out.update(
            {
                f"agglomeration_edges_per_s{name}": round(e / wall),
                f"agglomeration_edges_per_cpu_s{name}": round(e / cpu),
                f"reference_edges_per_s{name}": round(e / ref_wall),
                f"reference_edges_per_cpu_s{name}": round(e / ref_cpu),
                f"speedup{name}": round(ref_wall / wall, 1),
                f"identical{name}": bool(np.array_equal(scores, ref)),
            }
        )
    return out


def label_volumes(tmp: str) -> tuple[str, str, int]:
    from pipeline.io.volume import create_volume

    urls = []
    for name in ("supervoxels", "neuron_ids"):
        data = read_h5(f"volumes/labels/{name}")
        data = mirror_tile(data, TILES, int(data.max()) + 1).astype(np.uint64)
        vol = create_volume(
            f"{tmp}/labels.zarr/{name}", data.shape, "uint64", (10, 10, 10), chunks=(64, 128, 128)
        )
        vol.write(vol.roi, data)
        urls.append(vol.url)
        size = data.size
        del data
    return urls[0], urls[1], int(size)


def block_tables_side_by_side(seg_url: str, gt_url: str, voxels: int) -> dict:
    """The block tables alone (reading excluded), compiled vs numpy (``np.unique``, the version
    the compiled pass replaced), on the first blocks (raster order) holding ``voxels`` voxels,
    one process; and whether every block's two tables are equal."""
    from benchmarks.reference.contingency import numpy_contingency
    from pipeline.evaluate import block_contingency
    from pipeline.evaluate.volumes import BLOCK_VOXELS, _read, block_slices, default_block_shape
    from pipeline.io.volume import open_volume

    seg, gt = open_volume(seg_url), open_volume(gt_url)
    done, same = 0, True
    cpu = {"compiled": 0.0, "numpy": 0.0}
    for sl in block_slices(seg.shape, default_block_shape(seg, BLOCK_VOXELS)):
        a, b = _read(seg, sl), _read(gt, sl)
        _, cpu_new, new = _timed(block_contingency, a, b)
        _, cpu_old, old = _timed(numpy_contingency, a, b)
        same &= all(np.array_equal(x, y) for x, y in zip(old, new, strict=True))
        done += a.size
        cpu["compiled"] += cpu_new
        cpu["numpy"] += cpu_old
        if done >= voxels:
            break
    return {
        "table_voxels": done,
        "table_cpu_vps": round(done / cpu["compiled"]),
        "numpy_table_cpu_vps": round(done / cpu["numpy"]),
        "table_speedup_vs_numpy": round(cpu["numpy"] / cpu["compiled"], 1),
        "same_tables_as_numpy": bool(same),
    }


def _start_worker() -> None:
    import pipeline.evaluate  # noqa: F401
    from pipeline.stages.warm import warm

    warm()


def evaluate_speed(workers: int = 2) -> dict:
    from distributed import Client, LocalCluster

    from pipeline.evaluate import evaluate_volumes

    with tempfile.TemporaryDirectory(prefix="bench_aggeval_") as tmp:
        seg, gt, voxels = label_volumes(tmp)
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        )
        client = Client(cluster)
        try:
            client.run(_start_worker)
            runs = [_timed(evaluate_volumes, seg, gt, True, None, client) for _ in range(2)]
        finally:
            client.close()
            cluster.close()
        wall, _, on_cluster = min(runs, key=lambda r: r[0])
        _note(f"evaluate on {workers} workers: {voxels} voxels in {wall:.2f} s")
        local_wall, local_cpu, local = _timed(evaluate_volumes, seg, gt)
        _note(f"evaluate in one process: {local_wall:.2f} s")
        tables = block_tables_side_by_side(seg, gt, voxels // 4)
        _note(f"block tables: {tables}")
    return {
        "evaluate_voxels": voxels,
        "evaluate_workers": workers,
        "evaluate_vps": round(voxels / wall),
        "evaluate_local_vps": round(voxels / local_wall),
        "evaluate_local_cpu_vps": round(voxels / local_cpu),
        **tables,
        "same_figures": on_cluster == local,
        "vi_split": on_cluster["vi_split"],
        "vi_merge": on_cluster["vi_merge"],
        "adapted_rand": on_cluster["adapted_rand"],
    }


def main(json_out: bool = False) -> dict:
    if not FIB.exists():
        return {"skipped": f"real data not available: {FIB}"}
    out: dict = {"tiles": list(TILES)}
    out.update(agglomeration_speed())
    out.update(evaluate_speed())
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(main(json_out=True)))
