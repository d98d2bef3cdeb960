"""Choosing a segmentation parameter (a merge threshold, a mutex bias, a multicut beta) without
the data it is scored on.

A *curve* maps each candidate setting to the figures of one volume at that setting
(``vi_split``, ``vi_merge``, ``vi_sum``, ``adapted_rand`` and ``voxels``, as
``pipeline.correct.truth.FragmentTruth.scores`` and ``evaluate_arrays`` return them). A setting
is chosen on the curves of some volumes (pooled, voxel-weighted) and scored on another:

* :func:`choose` - the setting of lowest pooled VI sum (ties: the first in sorted order);
* :func:`held_out` - choose on ``choose_on`` curves, report the figures of the scored curve;
* :func:`cross_validate` - k folds: each fold is scored at the setting chosen on all others.

So the default of a workflow or a model card is set by the same function that the accuracy
benchmark reports (``benchmarks/bench_accuracy.py``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

Curve = Mapping[Hashable, Mapping[str, float]]
FIGURES = ("vi_split", "vi_merge", "vi_sum", "adapted_rand")


def cremi_score(figures: Mapping[str, float]) -> float:
    """CREMI's combined score: sqrt(VI sum x adapted Rand error)."""
    return math.sqrt(max(figures["vi_sum"], 0.0) * max(figures["adapted_rand"], 0.0))


def pooled(curves: Sequence[Curve]) -> dict[Hashable, dict[str, float]]:
    """Voxel-weighted means of several volumes' figures at each setting they all share."""
    if not curves:
        raise ValueError("no curves to pool")
    keys = [k for k in curves[0] if all(k in c for c in curves[1:])]
    if not keys:
        raise ValueError("the curves share no setting")
    out: dict[Hashable, dict[str, float]] = {}
    for k in keys:
        w = [float(c[k].get("voxels", 1.0)) for c in curves]
        total = sum(w) or 1.0
        out[k] = {
            f: sum(wi * c[k][f] for wi, c in zip(w, curves, strict=True)) / total for f in FIGURES
        }
        out[k]["voxels"] = sum(w)
    return out


def _order(key: Hashable) -> tuple:
    return tuple(key) if isinstance(key, tuple) else (key,)


def choose(curves: Curve | Sequence[Curve], figure: str = "vi_sum") -> Hashable:
    """The setting of lowest pooled ``figure`` over ``curves`` (ties: the first in sorted
    order, e.g. the lowest threshold)."""
    curve = pooled(curves) if isinstance(curves, Sequence) else curves
    return min(curve, key=lambda k: (curve[k][figure], _order(k)))


def figures(scores: Mapping[str, float]) -> dict[str, float]:
    """The reported figures of one scored setting, with the CREMI score."""
    out = {f: round(float(scores[f]), 4) for f in FIGURES}
    out["cremi_score"] = round(cremi_score(scores), 4)
    return out


def held_out(choose_on: Curve | Sequence[Curve], scored: Curve) -> dict[str, Any]:
    """Choose on ``choose_on`` and report ``scored`` at that setting, with the best setting of
    ``scored`` itself (for reference only: never a choice)."""
    setting = choose(choose_on)
    if setting not in scored:
        raise ValueError(f"setting {setting!r} chosen but not scored on the held-out curve")
    oracle = choose(scored)
    return {
        "setting": setting,
        **figures(scored[setting]),
        "oracle_setting": oracle,
        "oracle_vi_sum": round(float(scored[oracle]["vi_sum"]), 4),
    }


def cross_validate(folds: Mapping[str, Curve]) -> dict[str, Any]:
    """k-fold cross-validation over named volumes: each is scored at the setting chosen on the
    pooled curves of all the others; the mean of the folds' figures is reported with them."""
    if len(folds) < 2:
        raise ValueError("cross-validation needs at least two folds")
    results = {}
    for name, curve in folds.items():
        rest = [c for other, c in folds.items() if other != name]
        results[name] = {
            "chosen_on": [other for other in folds if other != name],
            **held_out(rest, curve),
        }
    mean = {
        f: round(sum(r[f] for r in results.values()) / len(results), 4)
        for f in (*FIGURES, "cremi_score")
    }
    return {"folds": results, "mean": mean}


__all__ = ["FIGURES", "choose", "cremi_score", "cross_validate", "figures", "held_out", "pooled"]
