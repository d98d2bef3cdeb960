"""The shipped model, run by the predict engine, finds real neuron boundaries on held-out FIB-SEM.

Measure: average precision (AP) of the predicted boundary probability against the ground-truth
boundary, i.e. voxels whose 6-neighbourhood holds another neuron id, on the held-out sections
z 130..159 of fib_medulla_train.h5 (the model card: the last 30 sections were never trained
on), y, x 0..160. Chance level is the AP of an uninformative (constant or shuffled) prediction,
which equals the boundary fraction (0.129 here). The test asks for AP >= 2x chance and >= chance
+ 0.3, and for beating the naive "darker is boundary" ranking of raw intensities (AP 0.339) by
0.2. Measured with the shipped weights: AP 0.874 (6.8x chance, +0.745); best F1 0.80 at
threshold 0.4, against 0.228 for predicting every voxel as boundary.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import REPO, shared_file

MODEL = "fib-boundary-v1"
ZOO = REPO / "models" / "zoo"


def label_boundaries(labels: np.ndarray) -> np.ndarray:
    """True where a 6-neighbour (inside the array) carries another label."""
    b = np.zeros(labels.shape, bool)
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        diff = labels[tuple(lo)] != labels[tuple(hi)]
        b[tuple(lo)] |= diff
        b[tuple(hi)] |= diff
    return b


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the precision-recall curve, stepwise over distinct score thresholds."""
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], truth[order]
    tp = np.cumsum(t)
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each distinct score
    precision = tp[last] / (last + 1)
    recall_steps = np.diff(np.r_[0, tp[last]]) / max(1, int(t.sum()))
    return float((precision * recall_steps).sum())


def test_average_precision_of_known_rankings():
    truth = np.array([1, 0, 1, 0, 0], bool)
    assert average_precision(np.array([0.9, 0.1, 0.8, 0.2, 0.3]), truth) == 1.0
    assert average_precision(np.full(5, 0.5), truth) == pytest.approx(0.4)  # = positive fraction
    assert average_precision(np.array([0.9, 0.8, 0.1, 0.7, 0.6]), truth) == pytest.approx(
        (1 + 2 / 5) / 2
    )


def test_shipped_model_finds_heldout_boundaries_far_better_than_chance():
    if not (ZOO / f"{MODEL}.pt").is_file():
        pytest.skip(f"the shipped model {MODEL} is not in models/zoo yet")
    import h5py

    from pipeline.stages.predict import predict_array

    path = shared_file("fib_medulla_flyem/fib_medulla_train.h5")
    with h5py.File(path, "r") as f:
        raw = f["volumes/raw"][96:160, :160, :160]  # 34 sections of context above z 130
        labels = f["volumes/labels/neuron_ids"][96:160, :160, :160]
    pred = predict_array(MODEL, raw, patch=(64, 64, 64), overlap=0.25, batch_size=2)[0]
    held = slice(34, 64)  # z 130..159
    truth = label_boundaries(labels)[held]
    known = labels[held] != 0
    scores, truth = pred[held][known], truth[known]
    chance = float(truth.mean())
    ap = average_precision(scores, truth)
    shuffled = average_precision(np.random.default_rng(0).permutation(scores), truth)
    dark = average_precision(-raw[held][known].astype(np.float32), truth)
    print(f"held-out AP {ap:.3f}, chance {chance:.3f} (shuffled {shuffled:.3f}), dark {dark:.3f}")
    assert abs(shuffled - chance) < 0.02
    assert ap >= 2 * chance and ap >= chance + 0.3, (ap, chance)
    assert ap >= dark + 0.2, (ap, dark)
