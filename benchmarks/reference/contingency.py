"""The numpy contingency table that the compiled pass (``pipeline.seg.contingency``) replaced:
the reference of its tests and of ``petaseg bench agglomeration``."""

from __future__ import annotations

import numpy as np


def numpy_contingency(seg, gt, ignore_gt_zero=True, ignore_seg_zero=False):
    """The numpy version (np.unique of the voxels) that the compiled pass replaced."""
    s, g = np.asarray(seg).ravel(), np.asarray(gt).ravel()
    keep = np.ones(s.shape, bool)
    if ignore_gt_zero:
        keep &= g != 0
    if ignore_seg_zero:
        keep &= s != 0
    s, g = s[keep], g[keep]
    if s.size == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.int64)
    su, si = np.unique(s, return_inverse=True)
    gu, gi = np.unique(g, return_inverse=True)
    k, counts = np.unique(si.astype(np.int64) * len(gu) + gi, return_counts=True)
    return su[k // len(gu)].astype(np.uint64), gu[k % len(gu)].astype(np.uint64), counts
