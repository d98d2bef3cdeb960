"""Segmentation metrics (VI split/merge in bits, adapted Rand error) from a sparse contingency
table that is accumulated block by block, so volumes larger than memory can be scored.

Conventions: ``vi_split`` = H(seg | gt) (over-segmentation), ``vi_merge`` = H(gt | seg)
(under-segmentation); adapted Rand error = 1 - F1 of pair precision/recall, where the pair
counts are sum(n_ij^2) - n (as in the SNEMI3D / CREMI definition and the DATA.md references).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.errors import InputError
from pipeline.geometry import Roi
from pipeline.io.volume import open_input


def block_contingency(
    seg: np.ndarray, gt: np.ndarray, ignore_gt_zero: bool = True, ignore_seg_zero: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (seg_ids, gt_ids, counts) of the distinct (seg, gt) pairs in one block."""
    if seg.shape != gt.shape:
        raise InputError(f"segmentation block {seg.shape} and ground-truth block {gt.shape} differ")
    s = np.asarray(seg).ravel()
    g = np.asarray(gt).ravel()
    if ignore_gt_zero or ignore_seg_zero:
        keep = np.ones(s.shape, bool)
        if ignore_gt_zero:
            keep &= g != 0
        if ignore_seg_zero:
            keep &= s != 0
        s, g = s[keep], g[keep]
    if s.size == 0:
        empty = np.zeros(0, np.uint64)
        return empty, empty.copy(), np.zeros(0, np.int64)
    su, si = np.unique(s, return_inverse=True)
    gu, gi = np.unique(g, return_inverse=True)
    key = si.astype(np.int64) * len(gu) + gi
    k, counts = np.unique(key, return_counts=True)
    return (
        su[k // len(gu)].astype(np.uint64),
        gu[k % len(gu)].astype(np.uint64),
        counts.astype(np.int64),
    )


def _reduce(s: np.ndarray, g: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, ...]:
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
        self.seg, self.gt, self.count = _reduce(
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


def _block_slices(shape: Sequence[int], block: Sequence[int]) -> Iterator[tuple[slice, ...]]:
    grid = [range(0, s, b) for s, b in zip(shape, block, strict=True)]
    for z in grid[0]:
        for y in grid[1]:
            for x in grid[2]:
                yield tuple(
                    slice(o, min(o + b, s)) for o, b, s in zip((z, y, x), block, shape, strict=True)
                )


def evaluate_volumes(
    seg_url: str,
    gt_url: str,
    ignore_gt_zero: bool = True,
    block_shape: Sequence[int] | None = None,
) -> dict[str, float]:
    """Score two volumes (any URL ``open_volume`` reads) block by block: only one block of each
    and the sparse contingency table are in memory at any time."""
    seg_vol, gt_vol = open_input(seg_url, "evaluate"), open_input(gt_url, "evaluate against")
    if seg_vol.shape != gt_vol.shape:
        raise InputError(
            f"segmentation {seg_url} has shape {seg_vol.shape} but ground truth {gt_url} has "
            f"shape {gt_vol.shape}; crop one to the other before scoring"
        )
    for vol in (seg_vol, gt_vol):
        if vol.channels is not None:
            raise InputError(f"{vol.url} has {vol.channels} channels; a label volume has none")
        if vol.dtype.kind == "f":
            raise InputError(f"{vol.url} is {vol.dtype}; labels must be an integer volume")
    if block_shape is None:
        block_shape = tuple(max(c, 64) for c in seg_vol.chunks)
        # aim for ~16M voxels per block: a few hundred MB for two uint64 blocks at most
        while int(np.prod(block_shape)) < (1 << 24) and tuple(block_shape) != seg_vol.shape:
            block_shape = tuple(
                min(2 * b, s) for b, s in zip(block_shape, seg_vol.shape, strict=True)
            )
    table = Contingency()
    for sl in _block_slices(seg_vol.shape, block_shape):
        vroi = Roi.from_slices(sl)
        seg = seg_vol.read(vroi.to_world(seg_vol.voxel_size).shift(seg_vol.offset))
        gt = gt_vol.read(vroi.to_world(gt_vol.voxel_size).shift(gt_vol.offset))
        table.add_block(seg, gt, ignore_gt_zero)
    return table.scores()
