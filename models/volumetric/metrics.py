"""Voxel-wise metrics of a probability map against a binary target (numpy)."""

from __future__ import annotations

import numpy as np


def _flat(pred, target, mask):
    pred = np.asarray(pred, np.float64).ravel()
    target = np.asarray(target).ravel() > 0.5
    if mask is not None:
        keep = np.asarray(mask).ravel() > 0
        pred, target = pred[keep], target[keep]
    return pred, target


def f1_score(pred, target, mask=None, threshold: float = 0.5) -> dict:
    """Precision, recall and F1 of ``pred >= threshold`` against the target (masked voxels out)."""
    pred, target = _flat(pred, target, mask)
    positive = pred >= threshold
    tp = float(np.sum(positive & target))
    fp = float(np.sum(positive & ~target))
    fn = float(np.sum(~positive & target))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def average_precision(pred, target, mask=None) -> float:
    """Threshold-free average precision: the precision at each true positive's rank, averaged
    (the area under the precision-recall curve, as in scikit-learn, ties grouped)."""
    pred, target = _flat(pred, target, mask)
    n_pos = int(target.sum())
    if n_pos == 0:
        return 0.0
    order = np.argsort(-pred, kind="stable")
    pred, target = pred[order], target[order]
    tps = np.cumsum(target)
    last = np.r_[np.flatnonzero(np.diff(pred)), pred.size - 1]  # last index of each tie group
    tp, n = tps[last].astype(np.float64), (last + 1).astype(np.float64)
    precision, recall = tp / n, tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
