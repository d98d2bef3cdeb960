"""Training the error classifiers against ground truth, and choosing the auto-correction
thresholds on the training data only.

Thresholds are chosen by running the real auto-correction (``correct_apply.auto_correct``) on
the training segmentations with spatially held-out predictions: the training volume is cut into
``FOLDS`` slabs along z, one model per slab is fitted on the examples of the other slabs, and a
candidate is scored by the model that never saw its slab (candidates that appear only after
merges included). So the thresholds are not fitted to examples the trees memorised, and the
evaluation data never enters here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.correct.apply import apply_selected, auto_correct, pair_truth, split_truth
from pipeline.correct.classifier import ErrorModel
from pipeline.correct.merge_errors import SplitCandidates, split_candidates
from pipeline.correct.split_errors import PairCandidates, pair_candidates
from pipeline.correct.tables import Segments, Tables
from pipeline.correct.truth import FragmentTruth
from pipeline.lut import Lut

FOLDS = 3
SPLIT_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)  # 1.01 = never apply
PAIR_GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.01)


@dataclass
class Labelled:
    """Candidates of one segmentation with their ground-truth labels."""

    tables: Tables
    lut: Lut
    truth: FragmentTruth
    pairs: PairCandidates
    splits: SplitCandidates
    pair_y: np.ndarray
    split_y: np.ndarray


def detect(tables: Tables, lut: Lut) -> tuple[PairCandidates, SplitCandidates]:
    segs = Segments.of(tables, lut)
    return pair_candidates(tables, segs), split_candidates(tables, segs)


def label(tables: Tables, lut: Lut, truth: FragmentTruth) -> Labelled:
    pairs, splits = detect(tables, lut)
    return Labelled(
        tables, lut, truth, pairs, splits, pair_truth(truth, lut, pairs), split_truth(truth, splits)
    )


def _fold(points: np.ndarray, tables: Tables) -> np.ndarray:
    z = np.asarray(points, np.int64).reshape(-1, 3)[:, 0]
    return np.minimum(z * FOLDS // max(tables.shape[0], 1), FOLDS - 1)


def held_out_predictor(data: list[Labelled]):
    """Fit one model per z-slab fold (on the other folds); return ``predict(d, kind, x, points)``
    that scores a candidate of ``data[d]`` with the model that did not see its slab."""
    folds = {
        "pair": np.concatenate([_fold(d.pairs.point, d.tables) for d in data]),
        "split": np.concatenate([_fold(d.splits.point, d.tables) for d in data]),
    }
    x = {
        "pair": np.concatenate([d.pairs.features for d in data]),
        "split": np.concatenate([d.splits.features for d in data]),
    }
    y = {
        "pair": np.concatenate([d.pair_y for d in data]),
        "split": np.concatenate([d.split_y for d in data]),
    }
    models = [
        ErrorModel({k: (x[k][folds[k] != f], y[k][folds[k] != f]) for k in x}).fit()
        for f in range(FOLDS)
    ]

    def predict(d: int, kind: str, feats: np.ndarray, points: np.ndarray) -> np.ndarray:
        out = np.zeros(len(feats))
        fold = _fold(points, data[d].tables)
        for f in range(FOLDS):
            pick = fold == f
            if pick.any():
                out[pick] = models[f].predict(kind, feats[pick])
        return out

    return predict


def choose_thresholds(data: list[Labelled], predict) -> tuple[dict[str, float], dict[str, float]]:
    """First the split threshold (splits alone), then the merge threshold (full auto-correction
    with that split threshold), each the lowest summed VI over the training segmentations."""
    base = sum(d.truth.scores(d.lut)["vi_sum"] for d in data)
    split_p = [predict(i, "split", d.splits.features, d.splits.point) for i, d in enumerate(data)]

    def vi_splits(ts: float) -> float:
        return sum(
            d.truth.scores(apply_selected(d.lut, d.pairs, [], d.splits, np.flatnonzero(sp >= ts)))[
                "vi_sum"
            ]
            for d, sp in zip(data, split_p, strict=True)
        )

    ts = min(SPLIT_GRID, key=vi_splits)

    def vi_all(tp: float) -> float:
        total = 0.0
        for i, (d, sp) in enumerate(zip(data, split_p, strict=True)):
            fixed, _ = auto_correct(
                d.lut,
                d.tables,
                d.splits,
                sp,
                lambda kind, x, pts, i=i: predict(i, kind, x, pts),
                {"pair": tp, "split": ts},
            )
            total += d.truth.scores(fixed)["vi_sum"]
        return total

    scored = {tp: vi_all(tp) for tp in PAIR_GRID}
    tp = min(scored, key=scored.get)
    return {"pair": tp, "split": ts}, {
        "train_vi_before": base,
        "train_vi_after_held_out": scored[tp],
    }


def train_model(data: list[Labelled], info: dict[str, Any] | None = None) -> ErrorModel:
    """Fit both classifiers on the candidates of ``data`` and choose thresholds (see above)."""
    px = np.concatenate([d.pairs.features for d in data])
    py = np.concatenate([d.pair_y for d in data])
    sx = np.concatenate([d.splits.features for d in data])
    sy = np.concatenate([d.split_y for d in data])
    thresholds, vi = choose_thresholds(data, held_out_predictor(data))
    model = ErrorModel({"pair": (px, py), "split": (sx, sy)}, thresholds, dict(info or {}))
    model.info.update(
        {
            **vi,
            "pair_examples": int(len(py)),
            "pair_positives": int(py.sum()),
            "split_examples": int(len(sy)),
            "split_positives": int(sy.sum()),
        }
    )
    return model.fit()
