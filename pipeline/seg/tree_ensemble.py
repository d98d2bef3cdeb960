"""A fitted scikit-learn ``HistGradientBoostingClassifier`` (binary) as flat numpy arrays, one row
per tree node (feature, threshold, left, right, value, missing-goes-left, leaf), evaluated by a
compiled kernel so the merge loop can score edges without leaving numba. The probability is the
logistic of the baseline plus the leaf values, as scikit-learn's ``predict_proba`` computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np


@dataclass(frozen=True)
class TreeEnsemble:
    """Nodes of all trees concatenated (children indices are global); ``roots``: each tree's
    first node; ``baseline``: the raw score before any tree."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    missing_left: np.ndarray
    leaf: np.ndarray
    roots: np.ndarray
    baseline: float

    @classmethod
    def from_sklearn(cls, clf: Any) -> TreeEnsemble:
        """Export a fitted binary ``HistGradientBoostingClassifier`` (numeric features only)."""
        if len(clf.classes_) != 2:
            raise ValueError("only binary classifiers can be exported")
        parts, roots, offset = [], [], 0
        for (predictor,) in clf._predictors:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            parts.append((nodes, offset))
            roots.append(offset)
            offset += len(nodes)

        def cat(field: str, dtype, shift: bool = False) -> np.ndarray:
            return np.concatenate(
                [np.asarray(n[field], dtype) + (o if shift else 0) for n, o in parts]
            )

        return cls(
            feature=cat("feature_idx", np.int64),
            threshold=cat("num_threshold", np.float64),
            left=cat("left", np.int64, shift=True),
            right=cat("right", np.int64, shift=True),
            value=cat("value", np.float64),
            missing_left=cat("missing_go_to_left", np.uint8),
            leaf=cat("is_leaf", np.uint8),
            roots=np.asarray(roots, np.int64),
            baseline=float(np.ravel(clf._baseline_prediction)[0]),
        )

    def arrays(self) -> tuple:
        """The tuple the compiled kernels take (``ensemble_proba``)."""
        return (
            self.feature,
            self.threshold,
            self.left,
            self.right,
            self.value,
            self.missing_left,
            self.leaf,
            self.roots,
            self.baseline,
        )

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probability of class 1 for each row of ``x``."""
        return _proba_rows(np.ascontiguousarray(x, np.float64), self.arrays())


@numba.njit(cache=True, nogil=True)
def ensemble_proba(ens, x):
    """Probability of class 1 of one feature row ``x`` under the ensemble ``ens``
    (``TreeEnsemble.arrays()``)."""
    feature, threshold, left, right, value, missing_left, leaf, roots, baseline = ens
    raw = baseline
    for t in range(roots.size):
        i = roots[t]
        while leaf[i] == 0:
            xv = x[feature[i]]
            if np.isnan(xv):
                i = left[i] if missing_left[i] else right[i]
            elif xv <= threshold[i]:
                i = left[i]
            else:
                i = right[i]
        raw += value[i]
    return 1.0 / (1.0 + np.exp(-raw))


@numba.njit(cache=True, nogil=True)
def _proba_rows(x, ens):
    out = np.empty(x.shape[0])
    for r in range(x.shape[0]):
        out[r] = ensemble_proba(ens, x[r])
    return out
