"""How much of the segmentation error on unseen sections the network causes (issue 15).

FIB z 130-159 (unseen in training by the shipped networks) is segmented with the example
workflow's fragments (its block, context, threshold and min_size) and mean agglomeration (a
scoring that needs no trained model, so both maps are treated alike) from two maps:

- the network's (``--model``, default fib-boundary-v1; its test-time-augmented map with
  ``PETASEG_BENCH_ACCURACY_TTA=1``);
- the ground truth's own (the training target: for a boundary model its boundaries, 2 voxels
  thick at every contact; for an affinity model its affinities at the model's offsets), 0.95
  on a boundary (affinity 0.05 across one) and 0.05 elsewhere: a perfect network.

Fragments by ``--method``: ``watershed`` (of the boundary map, or of ``1 - mean`` of the
nearest-neighbour affinities) or ``affinity_watershed`` (over the faces' affinities), at the
fragments threshold ``--fragment-threshold`` (default the example workflow's).

For each map and each ``--sigma-seeds`` (smoothing of the distance transform before its maxima
seed the watershed) the row holds: the fragments' count; the *oracle agglomeration* of the
fragments (each joined to the neuron holding most of its voxels: what no merge threshold can
beat); mean agglomeration at 0.5 (the example workflow's merge threshold until it took learned
agglomeration); and the best point of the
merge-threshold curve (chosen on the scored part itself: for reference, never a choice).
One JSON line on stdout.

    python -m benchmarks.headroom_experiment [--model fib-boundary-v1] [--sigma-seeds 2]
        [--method watershed|affinity_watershed] [--fragment-threshold 0.5]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.accuracy_curves import agglomeration_curve, segment_part, truth_of
from benchmarks.accuracy_data import _write, cache_root, model_tag, part_urls, read_part
from benchmarks.choice_experiment import floats_list
from pipeline.correct.truth import FragmentTruth
from pipeline.evaluate.choice import choose, figures

INSIDE, ON_BOUNDARY = 0.05, 0.95
MEAN_THRESHOLD = 0.5  # the example workflow's merge threshold while it agglomerated by the mean


def truth_boundary_map(labels: np.ndarray) -> np.ndarray:
    """uint8 boundary prediction (value / 255) of a perfect network: ``ON_BOUNDARY`` where the
    training target marks a boundary (a face neighbour has another id), ``INSIDE`` elsewhere."""
    from models.volumetric.targets import boundary_map

    target, _ = boundary_map(labels)
    return _as_prediction(target > 0.5, ON_BOUNDARY)


def _as_prediction(marked: np.ndarray, value: float) -> np.ndarray:
    """uint8 prediction (value / 255): ``value`` where ``marked``, the other level elsewhere."""
    other = INSIDE if value == ON_BOUNDARY else ON_BOUNDARY
    return np.round(np.where(marked, value, other) * 255).astype(np.uint8)


def truth_prediction(gt_url: str, like_url: str, out_url: str) -> str:
    """The ground truth's own map, of the kind of the prediction at ``like_url`` (boundary, or
    affinities at its offsets), written as such a prediction at ``out_url`` (cached)."""
    from models.volumetric.targets import affinities
    from pipeline.io.volume import open_volume

    like = open_volume(like_url)
    attrs = {"value_scale": 1 / 255, "value_offset": 0.0, "output": like.attrs["output"]}
    if not (Path(out_url) / "zarr.json").exists():
        labels = read_part(gt_url)
        if like.channels:
            attrs["offsets"] = like.attrs["offsets"]
            same, _ = affinities(labels, attrs["offsets"])
            values = _as_prediction(same > 0.5, ON_BOUNDARY)  # affinity: high within a neuron
            _write(out_url, values, like.channels, attrs)
        else:
            _write(out_url, truth_boundary_map(labels), None, attrs)
    return out_url


def headroom_row(
    pred_url: str, gt_url: str, root: Path, client, sigma_seeds: float, options: argparse.Namespace
) -> dict:
    """Fragments, oracle agglomeration and mean agglomeration figures of one map."""
    frag, tables = segment_part(
        pred_url,
        root,
        client,
        threshold=options.fragment_threshold,
        sigma_seeds=sigma_seeds,
        method=options.method,
    )
    truth = truth_of(frag, gt_url)
    curve = agglomeration_curve(tables, truth, "mean")
    best = choose(curve)
    fixed = min(curve, key=lambda t: abs(t - MEAN_THRESHOLD))
    return {
        "sigma_seeds": sigma_seeds,
        "fragments": int(len(np.unique(truth[0]))),
        "oracle_agglomeration": figures(FragmentTruth(*truth).majority_oracle()),
        "mean_at_0.5": {"threshold": fixed, **figures(curve[fixed])},
        "mean_best_on_scored_part": {"threshold": best, **figures(curve[best])},
    }


def headroom(options: argparse.Namespace, client) -> dict:
    """Rows of the network's map and of the ground truth's map on FIB z 130-159."""
    pred_url, gt_url = part_urls(options.model, "fib")["test"]
    tag = model_tag(options.model)
    truth_root = cache_root() / "truth-map" / f"{tag.removesuffix('-tta')}-fib-test.zarr"
    truth_url = truth_prediction(gt_url, pred_url, str(truth_root / "pred"))
    maps = {tag: pred_url, "ground truth": truth_url}
    rows = []
    for name, url in maps.items():
        part = Path(url).parent  # .../NAME.zarr/pred: segmentations beside NAME.zarr
        seg_root = part.with_name(part.name.removesuffix(".zarr") + "-headroom-seg")
        for s in options.sigma_seeds:
            row = headroom_row(url, gt_url, seg_root, client, s, options)
            rows.append({"map": name, **row})
    return {
        "part": "FIB z 130-159",
        "model": options.model,
        "method": options.method,
        "fragment_threshold": options.fragment_threshold,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> dict:
    from distributed import Client, LocalCluster

    from benchmarks.accuracy_curves import example_fragments

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fib-boundary-v1", help="the network whose map is scored")
    ap.add_argument(
        "--sigma-seeds",
        type=floats_list,
        default=[2.0],
        help="comma-separated seed smoothings (voxels), e.g. 0,1,2",
    )
    ap.add_argument("--method", choices=("watershed", "affinity_watershed"), default="watershed")
    ap.add_argument("--fragment-threshold", type=float, default=example_fragments().threshold)
    options = ap.parse_args(argv)
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        result = headroom(options, client)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
