"""The error classifiers: gradient-boosted trees (scikit-learn) on the candidate features, one for
split-error pairs and one for merge-error proposals, and the confidence thresholds above which
corrections are applied automatically.

A model file is one Parquet table: the training examples (kind, features, label) with the
feature names, thresholds and training provenance in its metadata. Loading refits the trees on
those examples (deterministic, a second or two), so no pickled code is ever loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from pipeline.correct.merge_errors import SPLIT_FEATURES
from pipeline.correct.split_errors import PAIR_FEATURES
from pipeline.errors import InputError
from pipeline.io.tables import read_model_table, write_model_table

MODEL_FORMAT = "petaseg-correct-model/1"
KINDS = {"pair": PAIR_FEATURES, "split": SPLIT_FEATURES}


_CONTROLLER = None


def _one_thread():
    """Trees on one OpenMP thread: on a shared machine more threads make sklearn many times
    slower (oversubscription), and the candidate tables are small. The thread-pool controller
    is built once (building it scans the loaded libraries)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        import sklearn.ensemble  # noqa: F401 - load OpenMP before the controller looks

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1)


def _classifier():
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=150,
        learning_rate=0.08,
        max_leaf_nodes=15,
        min_samples_leaf=10,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=0,
    )


@dataclass
class ErrorModel:
    """Training examples per kind, fitted classifiers, and auto-correction thresholds."""

    examples: dict[str, tuple[np.ndarray, np.ndarray]]  # kind -> (features, labels)
    thresholds: dict[str, float] = field(default_factory=lambda: {"pair": 0.9, "split": 0.9})
    info: dict[str, Any] = field(default_factory=dict)
    _fitted: dict[str, Any] = field(default_factory=dict, repr=False)

    def fit(self) -> ErrorModel:
        for kind, (x, y) in self.examples.items():
            if len(y) == 0 or len(np.unique(y)) < 2:
                self._fitted[kind] = float(y.mean()) if len(y) else 0.0  # a constant
                continue
            with _one_thread():
                self._fitted[kind] = _classifier().fit(x, y)
        return self

    def predict(self, kind: str, x: np.ndarray) -> np.ndarray:
        """Probability that each candidate is an error (one neuron split / two merged)."""
        if len(x) == 0:
            return np.zeros(0)
        if kind not in self._fitted:
            raise InputError(f"the model has no '{kind}' classifier; retrain it")
        clf = self._fitted[kind]
        if isinstance(clf, float):
            return np.full(len(x), clf)
        with _one_thread():
            return clf.predict_proba(x)[:, 1]

    # --- file ------------------------------------------------------------------------------
    def save(self, path: str) -> None:
        cols: dict[str, list] = {"kind": [], "label": []}
        width = max(len(v) for v in KINDS.values())
        for i in range(width):
            cols[f"f{i}"] = []
        for kind, (x, y) in self.examples.items():
            cols["kind"] += [kind] * len(y)
            cols["label"] += [int(v) for v in y]
            for i in range(width):
                cols[f"f{i}"] += (x[:, i] if i < x.shape[1] else np.full(len(y), np.nan)).tolist()
        meta = {
            "format": MODEL_FORMAT,
            "features": KINDS,
            "thresholds": self.thresholds,
            "info": self.info,
        }
        write_model_table(path, cols, meta)

    @classmethod
    def load(cls, path: str) -> ErrorModel:
        table, meta = read_model_table(
            path, "correction model", "train one with `petaseg correct-train`"
        )
        if meta.get("format") != MODEL_FORMAT or meta.get("features") != KINDS:
            raise InputError(
                f"{path} was trained with other features ({meta.get('format')}); retrain it "
                "with this version of petaseg"
            )
        kind = np.asarray(table.column("kind").to_pylist())
        label = table.column("label").to_numpy()
        examples = {}
        for k, names in KINDS.items():
            pick = kind == k
            x = np.stack(
                [table.column(f"f{i}").to_numpy()[pick] for i in range(len(names))], axis=1
            )
            examples[k] = (x.astype(np.float64), label[pick].astype(np.int64))
        return cls(examples, meta["thresholds"], meta.get("info", {})).fit()


def precision_at(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of true errors among the ``k`` highest-scored candidates."""
    if len(scores) == 0:
        return float("nan")
    top = np.argsort(-np.asarray(scores), kind="stable")[:k]
    return float(np.asarray(labels)[top].mean())
