"""Learned agglomeration against mean agglomeration on FIB data, cross-validated in z, and the
speed of the compiled learned merge loop.

Data: ``fib_medulla_train.h5`` (160x250x250, 10 nm), the boundary map of the shipped
``fib-boundary-v1`` (predicted once, cached under ``~/.cache/petaseg/learned``; note that model
was trained on z 0-129, so z 100-129 of the held-out part were seen by the boundary network,
though never by the edge classifier or the threshold choice). Train part: z 0-99; held-out
part: z 100-159. The train part is two volumes, z 0-49 and z 50-99; each of the three is
segmented on its own (the fragments settings of ``workflows/examples/fib_medulla.yaml``: block
64x128x128, context 16, threshold 0.5, min_size 50). The edge model is trained on both train
graphs; its threshold is cross-validated (z 0-49 agglomerated by a model fitted on z 50-99 and
vice versa; lowest pooled VI sum over 0.10..0.95 in steps of 0.05); the mean threshold is the
lowest pooled VI sum of the two train graphs. The held-out part is then scored at those
thresholds (VI split/merge/sum and adapted Rand of fragments -> segments
against the neuron ids, label 0 ignored, from the fragment x ground-truth table).

Speed (one process, one thread): edges / seconds of the whole merge loop to the end on the
held-out part's region graph, learned and mean side by side (best of 3, compilation excluded),
and on the larger, finer graph that ``petaseg bench agglomeration`` times (``fine_*``, best of 2).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIB = REPO.parent / "shared" / "data" / "fib_medulla_flyem" / "fib_medulla_train.h5"
CACHE = Path.home() / ".cache" / "petaseg" / "learned"
PARTS = {"train_a": slice(0, 50), "train_b": slice(50, 100), "heldout": slice(100, 160)}


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def boundary_map() -> str:
    """The fib-boundary-v1 prediction of the whole volume (cached)."""
    from workflows.cli.app import main as petaseg

    url = str(CACHE / "fib_train.zarr" / "boundary")
    if not (CACHE / "fib_train.zarr" / "boundary" / "zarr.json").exists():
        _note("predicting fib-boundary-v1 over fib_medulla_train (cached afterwards)")
        args = ["predict", "--model", "fib-boundary-v1", "--input", f"{FIB}/volumes/raw"]
        args += ["--output", url, "--overlap", "0", "--cluster", "threads:1", "--json"]
        if petaseg(args) != 0:
            raise RuntimeError("prediction failed")
    return url


def crops(boundary_url: str) -> dict[str, tuple[str, str]]:
    """Boundary and neuron-id volumes of the two train parts and the held-out part."""
    import h5py

    from pipeline.io.volume import create_volume, open_volume

    bnd = open_volume(boundary_url).read()
    with h5py.File(FIB, "r") as f:
        gt = f["volumes/labels/neuron_ids"][:]
    out = {}
    for name, sl in PARTS.items():
        root = CACHE / f"{name}.zarr"
        urls = (str(root / "boundary"), str(root / "neuron_ids"))
        if not (root / "neuron_ids" / "zarr.json").exists():
            for url, data in zip(urls, (bnd[sl], gt[sl]), strict=True):
                v = create_volume(url, data.shape, data.dtype, (10, 10, 10), chunks=(64, 128, 128))
                v.write(v.roi, data)
        out[name] = urls
    return out


def segmented(name: str, boundary_url: str, client) -> dict:
    """Fragments, region graph and mean agglomeration of one part (resumes when cached)."""
    from workflows.run import segment_boundaries
    from workflows.schema import FragmentsStage, SegmentStage, Stages

    stages = Stages(
        fragments=FragmentsStage(
            threshold=0.5, min_size=50, block=[64, 128, 128], context=[16, 16, 16]
        ),
        segment=SegmentStage(thresholds=[0.5]),
    )
    out = str(CACHE / f"{name}-seg.zarr" / "seg")
    return segment_boundaries(boundary_url, out, stages, client, False)


def _truth(fragments_url: str, gt_url: str):
    from pipeline.correct.truth import FragmentTruth

    t = FragmentTruth.from_volumes(fragments_url, gt_url)
    return t.fragment, t.gt, t.count


def speed(root: str, model_path: str) -> dict:
    """Edges/s of the learned and the mean merge loop on one region graph."""
    from pipeline.seg.agglomeration import Scoring, agglomerate
    from pipeline.stages.learned_model import _graph, edge_model

    edges, size, ids = _graph(root)
    ens = edge_model(model_path).ensemble
    out = {"speed_edges": int(len(edges["u"]))}
    for name, scoring in (("learned", Scoring("learned", model=model_path)), ("mean", Scoring())):
        args = (len(ids), edges["u"], edges["v"], edges["count"], edges["sum"], edges["hist"])
        agglomerate(*args, scoring, size=size, ensemble=ens)  # compile
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            agglomerate(*args, scoring, size=size, ensemble=ens)
            best = min(best, time.perf_counter() - t0)
        out[f"{name}_edges_per_s"] = len(edges["u"]) / best
    out["learned_vs_mean_speed"] = out["learned_edges_per_s"] / out["mean_edges_per_s"]
    return out


def fine_graph() -> dict:
    """The graph ``petaseg bench agglomeration`` times (FIB, stand-in boundary map, fine
    fragments, mirror-tiled 1x2x2, 16 bins), with region sizes."""
    from benchmarks.bench_agglomeration import TILES, mirror_tile, read_h5
    from benchmarks.correct_experiment import boundary_from_raw
    from pipeline.seg.rag import region_contacts
    from pipeline.seg.watershed import FragmentParams, fragments_from_boundary

    boundary = boundary_from_raw(read_h5("volumes/raw"))
    frag = fragments_from_boundary(boundary, FragmentParams(sigma_seeds=0, min_size=10))
    frag = mirror_tile(frag, TILES, int(frag.max()) + 1)
    edges = region_contacts(frag, mirror_tile(boundary, TILES), nbins=16)
    keep = edges["u"] != 0
    ids, counts = np.unique(frag, return_counts=True)
    e = {k: edges[k][keep] for k in ("count", "sum", "hist")}
    e.update(
        {"u": np.searchsorted(ids, edges["u"][keep]), "v": np.searchsorted(ids, edges["v"][keep])}
    )
    return {"edges": e, "size": counts.astype(np.float64), "n": len(ids)}


def fine_speed(model_path: str) -> dict:
    """Edges/s of learned and mean agglomeration to the end on ``fine_graph`` (best of 2)."""
    from pipeline.seg.agglomeration import Scoring, agglomerate
    from pipeline.stages.learned_model import edge_model

    g = fine_graph()
    e, ens = g["edges"], edge_model(model_path).ensemble
    args = (g["n"], e["u"], e["v"], e["count"], e["sum"], e["hist"])
    out = {"fine_graph_edges": int(len(e["u"]))}
    for name, scoring in (("learned", Scoring("learned", model=model_path)), ("mean", Scoring())):
        best = np.inf
        for _ in range(2):
            t0 = time.perf_counter()
            agglomerate(*args, scoring, size=g["size"], ensemble=ens)
            best = min(best, time.perf_counter() - t0)
        out[f"fine_{name}_edges_per_s"] = round(len(e["u"]) / best)
    out["fine_learned_vs_mean_speed"] = (
        out["fine_learned_edges_per_s"] / out["fine_mean_edges_per_s"]
    )
    return out


def main(json_out: bool = False) -> dict:
    from distributed import Client, LocalCluster
    from threadpoolctl import threadpool_limits

    from pipeline.stages.learned_model import (
        GRID,
        _pooled,
        best_threshold,
        save_edge_model,
        scores_at,
        train_edge_model,
    )

    parts = crops(boundary_map())
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        runs = {name: segmented(name, urls[0], client) for name, urls in parts.items()}
    truth = {n: _truth(runs[n]["fragments_url"], parts[n][1]) for n in parts}
    train = [(runs[n]["tables"], truth[n]) for n in ("train_a", "train_b")]
    _note("training the edge classifier on z 0-99 (threshold cross-validated: z 0-49 / 50-99)")
    with threadpool_limits(1):
        model = train_edge_model(train, info={"data": "fib_medulla_train z 0-49 and 50-99"})
    path = str(CACHE / "fib-edge-z0-99.parquet")
    Path(path).unlink(missing_ok=True)
    save_edge_model(model, path)
    result: dict = {"model_file": path, "train_examples": model.info["examples"]}
    mean_curve = _pooled([scores_at(r, t, "mean", GRID) for r, t in train])
    chosen = {"mean": best_threshold(mean_curve), "learned": model.threshold}
    how = {"mean": "lowest pooled VI sum on z 0-49 and 50-99"}
    how["learned"] = "lowest pooled VI sum, cross-validated on z 0-49 / 50-99"
    for name, scoring in (("mean", "mean"), ("learned", f"learned:{path}")):
        held = scores_at(runs["heldout"]["tables"], truth["heldout"], scoring, GRID)
        t = chosen[name]
        result[name] = {
            "threshold": t,
            "threshold_chosen_on": how[name],
            "heldout": held[t],
            "heldout_best_threshold": best_threshold(held),
            "heldout_best_vi_sum": held[best_threshold(held)]["vi_sum"],
        }
    result["learned_beats_mean_heldout"] = (
        result["learned"]["heldout"]["vi_sum"] < result["mean"]["heldout"]["vi_sum"]
    )
    result.update(speed(runs["heldout"]["tables"], path))
    _note("speed on the fine graph of petaseg bench agglomeration")
    result.update(fine_speed(path))
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(main(json_out=True), default=str))
