"""Segmentation settings chosen on sections no network saw, for issue 15's defaults.

``bench accuracy`` chooses FIB settings on z 0-99, inside the shipped networks' training
sections, where their maps are sharper than on unseen data; the choice then favours low
thresholds that do not transfer. Here a *fold network*, trained with the shipped recipe on z 0-99
only, predicts z 100-129 (unseen by it): the watershed fragments threshold and the merge
threshold of mean agglomeration are chosen there (lowest VI sum), and the shipped network is
scored with that choice on z 130-159 (unseen by both). The curve of the chosen-on part and the
scored figures go to stdout as one JSON line.

    python -m benchmarks.choice_experiment --fold-model FOLD.pt [--model fib-boundary-v1]

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


def mean_curve(model: str, name: str, pred: str, gt: str, client) -> dict:
    """VI/ARAND per (fragments threshold, merge threshold) of one part."""
    root = cache_root() / model_tag(model) / f"fib-{name}-seg"
    curve: dict = {}
    for ft in FRAGMENT_THRESHOLDS:
        frag, tables = segment_part(pred, root, client, threshold=ft)
        for t, s in agglomeration_curve(tables, truth_of(frag, gt), "mean").items():
            curve[(ft, t)] = s
    return curve


def main() -> dict:
    from distributed import Client, LocalCluster

    ap = argparse.ArgumentParser()
    ap.add_argument("--fold-model", required=True, help="network trained on FIB z 0-99 only")
    ap.add_argument("--model", default="fib-boundary-v1", help="the network scored on z 130-159")
    args = ap.parse_args()
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        choice = mean_curve(args.fold_model, "choice", *choice_part(args.fold_model), client)
        test = mean_curve(args.model, "test", *part_urls(args.model, "fib")["test"], client)
    result = held_out(choice, test)
    ft, t = result["setting"]
    return {
        "fold_model": args.fold_model,
        "model": args.model,
        "chosen": {"fragments_threshold": ft, "threshold": t},
        "chosen_on": "FIB z 100-129 predicted by the fold network (trained on z 0-99 only)",
        "scored": figures(test[(ft, t)]),
        "scored_on": "FIB z 130-159 predicted by the shipped network",
        "held_out": result,
        "choice_curve_vi_sum": [[list(k), round(s["vi_sum"], 4)] for k, s in choice.items()],
        "test_curve_vi_sum": [[list(k), round(s["vi_sum"], 4)] for k, s in test.items()],
    }


if __name__ == "__main__":
    print(json.dumps(main(), default=str))
