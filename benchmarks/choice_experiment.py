"""Segmentation settings chosen on sections no network saw, for issue 15's defaults.

``bench accuracy`` chooses FIB settings on z 0-99, inside the shipped networks' training
sections, where their maps are sharper than on unseen data; the choice then favours low
thresholds that do not transfer. Here a *fold network*, trained with the shipped recipe on z 0-99
only, predicts z 100-129 (unseen by it): the watershed fragments threshold and the merge
threshold of mean agglomeration are chosen there (lowest VI sum), and the shipped network is
scored with that choice on z 130-159 (unseen by both). The curve of the chosen-on part and the
scored figures go to stdout as one JSON line.

    python -m benchmarks.choice_experiment --fold-model FOLD.pt [--model fib-boundary-v1]
        [--scoring mean|learned:MODEL] [--fragment-thresholds 0.2,0.35,0.5,0.65]
        [--sigma-seeds 0,1,2]

``--sigma-seeds`` adds the watershed's seed smoothing to the settings chosen; ``--scoring``
agglomerates with another scoring (its merge threshold chosen the same way).

Predictions and segmentations are cached with ``bench accuracy``'s (``accuracy_data``).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.accuracy_curves import agglomeration_curve, segment_part, truth_of
from benchmarks.accuracy_data import (
    _pred_attrs,
    _read,
    _write,
    cache_root,
    model_tag,
    part_urls,
    prediction,
)
from pipeline.evaluate.choice import figures, held_out

FRAGMENT_THRESHOLDS = (0.2, 0.35, 0.5, 0.65)
CHOICE_SECTIONS = slice(100, 130)


def choice_part(model: str) -> tuple[str, str]:
    """(prediction, neuron ids) URLs of z 100-129 of the FIB volume by ``model`` (cached)."""
    from pipeline.io.volume import open_volume

    pred_url, _ = prediction(model, "fib")
    root = cache_root() / model_tag(model) / "fib-choice.zarr"
    p, g = root / "pred", cache_root() / "gt" / "fib-choice.zarr" / "neuron_ids"
    if not (p / "zarr.json").exists():
        pred = open_volume(pred_url)
        data = np.ascontiguousarray(pred.read()[CHOICE_SECTIONS])
        _write(str(p), data, None, _pred_attrs(pred.attrs))
    if not (g / "zarr.json").exists():
        gt = _read("fib", "volumes/labels/neuron_ids")[CHOICE_SECTIONS]
        _write(str(g), np.ascontiguousarray(gt).astype(np.uint64))
    return str(p), str(g)


def settings_curve(
    model: str, name: str, pred: str, gt: str, client, options: argparse.Namespace
) -> dict:
    """VI/ARAND per setting of one part: (fragments threshold, merge threshold), or (seed
    smoothing, fragments threshold, merge threshold) when ``options.sigma_seeds`` is given."""
    root = cache_root() / model_tag(model) / f"fib-{name}-seg"
    curve: dict = {}
    for seeds in options.sigma_seeds or [None]:
        for ft in options.fragment_thresholds:
            frag, tables = segment_part(pred, root, client, threshold=ft, sigma_seeds=seeds)
            truth = truth_of(frag, gt)
            for t, s in agglomeration_curve(tables, truth, options.scoring).items():
                curve[(ft, t) if seeds is None else (seeds, ft, t)] = s
    return curve


def floats_list(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def main(argv: list[str] | None = None) -> dict:
    from distributed import Client, LocalCluster

    ap = argparse.ArgumentParser()
    ap.add_argument("--fold-model", required=True, help="network trained on FIB z 0-99 only")
    ap.add_argument("--model", default="fib-boundary-v1", help="the network scored on z 130-159")
    ap.add_argument(
        "--scoring", default="mean", help="agglomeration scoring, e.g. learned:fib-edge-v1"
    )
    ap.add_argument(
        "--fragment-thresholds",
        type=floats_list,
        default=list(FRAGMENT_THRESHOLDS),
        help="comma-separated watershed thresholds",
    )
    ap.add_argument(
        "--sigma-seeds",
        type=floats_list,
        default=None,
        help="comma-separated seed smoothings to choose from too (default: the workflow's)",
    )
    args = ap.parse_args(argv)
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        fold = choice_part(args.fold_model)
        choice = settings_curve(args.fold_model, "choice", *fold, client, args)
        test_part = part_urls(args.model, "fib")["test"]
        test = settings_curve(args.model, "test", *test_part, client, args)
    result = held_out(choice, test)
    names = ("fragments_threshold", "threshold")
    names = names if args.sigma_seeds is None else ("sigma_seeds", *names)
    return {
        "fold_model": args.fold_model,
        "model": args.model,
        "scoring": args.scoring,
        "chosen": dict(zip(names, result["setting"], strict=True)),
        "chosen_on": "FIB z 100-129 predicted by the fold network (trained on z 0-99 only)",
        "scored": figures(test[result["setting"]]),
        "scored_on": "FIB z 130-159 predicted by the shipped network",
        "held_out": result,
        "choice_curve_vi_sum": [[list(k), round(s["vi_sum"], 4)] for k, s in choice.items()],
        "test_curve_vi_sum": [[list(k), round(s["vi_sum"], 4)] for k, s in test.items()],
    }


if __name__ == "__main__":
    print(json.dumps(main(), default=str))
