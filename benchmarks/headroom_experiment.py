"""How much of the segmentation error on unseen sections the boundary network causes (issue 15).

FIB z 130-159 (unseen in training by the shipped networks) is segmented as the example workflow
does it (watershed fragments with its block, context, threshold and min_size; mean
agglomeration) from two boundary maps:

- the network's (``--model``, default fib-boundary-v1; its test-time-augmented map with
  ``PETASEG_BENCH_ACCURACY_TTA=1``);
- the ground truth's own boundaries (the training target: 2 voxels thick at every contact),
  written as a boundary prediction of 0.95 on them and 0.05 elsewhere: a perfect network.

For each map and each ``--sigma-seeds`` (smoothing of the distance transform before its maxima
seed the watershed) the row holds: the fragments' count; the *oracle agglomeration* of the
fragments (each joined to the neuron holding most of its voxels: what no merge threshold can
beat); mean agglomeration at the example workflow's merge threshold; and the best point of the
merge-threshold curve (chosen on the scored part itself: for reference, never a choice).
One JSON line on stdout.

    python -m benchmarks.headroom_experiment [--model fib-boundary-v1] [--sigma-seeds 2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.accuracy_curves import agglomeration_curve, segment_part, truth_of
from benchmarks.accuracy_data import _write, cache_root, model_tag, part_urls, read_part
from pipeline.correct.truth import FragmentTruth
from pipeline.evaluate.choice import choose, figures

INSIDE, ON_BOUNDARY = 0.05, 0.95
WORKFLOW_MERGE_THRESHOLD = 0.5  # segment.thresholds[0] of workflows/examples/fib_medulla.yaml


def truth_boundary_map(labels: np.ndarray) -> np.ndarray:
    """uint8 boundary prediction (value / 255) of a perfect network: ``ON_BOUNDARY`` where the
    training target marks a boundary (a face neighbour has another id), ``INSIDE`` elsewhere."""
    from models.volumetric.targets import boundary_map

    target, _ = boundary_map(labels)
    values = np.where(target > 0.5, ON_BOUNDARY, INSIDE)
    return np.round(values * 255).astype(np.uint8)


def truth_prediction(gt_url: str, out_url: str) -> str:
    """The ground truth's boundary map written as a boundary prediction at ``out_url`` (cached)."""
    if not (Path(out_url) / "zarr.json").exists():
        attrs = {"value_scale": 1 / 255, "value_offset": 0.0, "output": "boundary"}
        _write(out_url, truth_boundary_map(read_part(gt_url)), None, attrs)
    return out_url


def headroom_row(pred_url: str, gt_url: str, root: Path, client, sigma_seeds: float) -> dict:
    """Fragments, oracle agglomeration and mean agglomeration figures of one boundary map."""
    frag, tables = segment_part(pred_url, root, client, sigma_seeds=sigma_seeds)
    truth = truth_of(frag, gt_url)
    curve = agglomeration_curve(tables, truth, "mean")
    best = choose(curve)
    workflow = min(curve, key=lambda t: abs(t - WORKFLOW_MERGE_THRESHOLD))
    return {
        "sigma_seeds": sigma_seeds,
        "fragments": int(len(np.unique(truth[0]))),
        "oracle_agglomeration": figures(FragmentTruth(*truth).majority_oracle()),
        "mean_at_workflow_threshold": {"threshold": workflow, **figures(curve[workflow])},
        "mean_best_on_scored_part": {"threshold": best, **figures(curve[best])},
    }


def headroom(model: str, sigma_seeds: list[float], client) -> dict:
    """Rows of the network's map and of the ground truth's map on FIB z 130-159."""
    pred_url, gt_url = part_urls(model, "fib")["test"]
    truth_url = truth_prediction(gt_url, str(cache_root() / "truth-map" / "fib-test.zarr" / "pred"))
    maps = {model_tag(model): pred_url, "ground-truth boundaries": truth_url}
    rows = []
    for name, url in maps.items():
        seg_root = Path(url).parent.parent / "headroom-seg"
        for s in sigma_seeds:
            rows.append({"map": name, **headroom_row(url, gt_url, seg_root, client, s)})
    return {"part": "FIB z 130-159", "model": model, "rows": rows}


def main(argv: list[str] | None = None) -> dict:
    from distributed import Client, LocalCluster

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fib-boundary-v1", help="the network whose map is scored")
    ap.add_argument(
        "--sigma-seeds", default="2", help="comma-separated seed smoothings (voxels), e.g. 0,1,2"
    )
    args = ap.parse_args(argv)
    seeds = [float(v) for v in args.sigma_seeds.split(",")]
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        result = headroom(args.model, seeds, client)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
