"""Segmentation metrics (VI split/merge in bits, adapted Rand error) from a sparse contingency
table that is accumulated block by block, so volumes larger than memory can be scored.

Conventions: ``vi_split`` = H(seg | gt) (over-segmentation), ``vi_merge`` = H(gt | seg)
(under-segmentation); adapted Rand error = 1 - F1 of pair precision/recall, where the pair
counts are sum(n_ij^2) - n (as in the SNEMI3D / CREMI definition and the DATA.md references).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.errors import InputError
from pipeline.seg.contingency import pair_counts


def block_contingency(
    seg: np.ndarray, gt: np.ndarray, ignore_gt_zero: bool = True, ignore_seg_zero: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (seg_ids, gt_ids, counts) of the distinct (seg, gt) pairs in one block, sorted by
    (seg, gt): one compiled pass (``seg.contingency``)."""
    if seg.shape != gt.shape:
        raise InputError(f"segmentation block {seg.shape} and ground-truth block {gt.shape} differ")
    return pair_counts(seg, gt, skip_a_zero=ignore_seg_zero, skip_b_zero=ignore_gt_zero)


def reduce_pairs(s: np.ndarray, g: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sum the counts of repeated (s, g) pairs."""
    if s.size == 0:
        return s, g, c
    order = np.lexsort((g, s))
    s, g, c = s[order], g[order], c[order]
    start = np.ones(s.size, bool)
    start[1:] = (s[1:] != s[:-1]) | (g[1:] != g[:-1])
    idx = np.flatnonzero(start)
    return s[idx], g[idx], np.add.reduceat(c, idx)


@dataclass
class Contingency:
    """A sparse (seg id, gt id) -> voxel count table; ``add`` blocks in any order."""

    seg: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    gt: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    count: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    _pending_rows: int = 0

    def add(self, s: np.ndarray, g: np.ndarray, c: np.ndarray) -> None:
        self._pending.append((s, g, c))
        self._pending_rows += len(s)
        # reduce when the pending rows outgrow the table: memory stays O(distinct pairs)
        if self._pending_rows > max(1 << 20, 2 * len(self.seg)):
            self._flush()

    def add_block(self, seg: np.ndarray, gt: np.ndarray, ignore_gt_zero: bool = True) -> None:
        self.add(*block_contingency(seg, gt, ignore_gt_zero))

    def _flush(self) -> None:
        if not self._pending:
            return
        parts = [(self.seg, self.gt, self.count), *self._pending]
        self.seg, self.gt, self.count = reduce_pairs(
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )
        self._pending, self._pending_rows = [], 0

    def table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._flush()
        return self.seg, self.gt, self.count

    def scores(self) -> dict[str, float]:
        return scores_from_table(*self.table())


def _marginal(ids: np.ndarray, count: np.ndarray) -> np.ndarray:
    _, inv = np.unique(ids, return_inverse=True)
    return np.bincount(inv, weights=count.astype(np.float64))


def scores_from_table(seg: np.ndarray, gt: np.ndarray, count: np.ndarray) -> dict[str, float]:
    """VI split/merge (bits) and adapted Rand error of a reduced contingency table."""
    n = float(count.sum())
    out = {"voxels": int(n)}
    if n == 0:
        return {**out, "vi_split": 0.0, "vi_merge": 0.0, "vi_sum": 0.0, "adapted_rand": 0.0}
    p_ij = count / n
    a = _marginal(seg, count)  # segment sizes
    b = _marginal(gt, count)  # ground-truth object sizes
    p_a, p_b = a / n, b / n
    h_joint = -np.sum(p_ij * np.log2(p_ij))
    h_seg = -np.sum(p_a * np.log2(p_a))
    h_gt = -np.sum(p_b * np.log2(p_b))
    vi_split = max(h_joint - h_gt, 0.0)  # H(seg | gt)
    vi_merge = max(h_joint - h_seg, 0.0)  # H(gt | seg)
    c = count.astype(np.float64)
    sum_ij = float(np.sum(c * c)) - n
    sum_a = float(np.sum(a * a)) - n
    sum_b = float(np.sum(b * b)) - n
    precision = sum_ij / sum_a if sum_a > 0 else 1.0
    recall = sum_ij / sum_b if sum_b > 0 else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        **out,
        "vi_split": float(vi_split),
        "vi_merge": float(vi_merge),
        "vi_sum": float(vi_split + vi_merge),
        "adapted_rand": float(1.0 - f1),
        "rand_precision": float(precision),
        "rand_recall": float(recall),
    }


def evaluate_arrays(
    seg: np.ndarray, gt: np.ndarray, ignore_gt_zero: bool = True
) -> dict[str, float]:
    """Score an in-memory segmentation against ground truth."""
    if seg.shape != gt.shape:
        raise InputError(
            f"segmentation shape {tuple(seg.shape)} differs from ground-truth shape "
            f"{tuple(gt.shape)}; score volumes of the same shape"
        )
    return scores_from_table(*block_contingency(seg, gt, ignore_gt_zero))
