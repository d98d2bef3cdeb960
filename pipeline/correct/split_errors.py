"""Split-error candidates: every pair of touching segments, with features saying whether their
shared boundary is real (two neurons) or false (one neuron cut in two).

Features come from the region graph (contact size, boundary mean and quantiles, the
agglomeration's merge score), the raw image (how dark the contact is: membranes are dark), and
shape (sizes, how thin the contact is for the smaller segment, whether the two segments'
principal axes line up through the contact, as a neurite cut across does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.correct.tables import Segments, Tables, _argmax_by, _sum_by
from pipeline.seg.rag import histogram_quantile

PAIR_FEATURES = [
    "log_contact",
    "bnd_mean",
    "bnd_q10",
    "bnd_q50",
    "bnd_q90",
    "score",
    "dark_mean",
    "dark_q50",
    "dark_q90",
    "log_size_min",
    "log_size_max",
    "contact_rel",
    "frags_min",
    "frags_max",
    "elong_min",
    "elong_max",
    "axis_align",
    "axis_through",
    "gap_rel",
    "raw_diff",
    "bnd_in_diff",
]


@dataclass
class PairCandidates:
    a: np.ndarray  # segment ids, a < b
    b: np.ndarray
    frag_a: np.ndarray  # the fragments of the largest contact between them (for merging later)
    frag_b: np.ndarray
    point: np.ndarray  # (n, 3) voxel on that contact (z, y, x, global voxel index)
    features: np.ndarray  # (n, len(PAIR_FEATURES))

    def __len__(self) -> int:
        return len(self.a)


def pair_candidates(tables: Tables, segs: Segments) -> PairCandidates:
    e = tables.edge
    fid = tables.frag["id"]
    iu = segs.of_frag[np.searchsorted(fid, e["u"])]
    iv = segs.of_frag[np.searchsorted(fid, e["v"])]
    cross = iu != iv
    lo, hi = np.minimum(iu, iv)[cross], np.maximum(iu, iv)[cross]
    n_seg = len(segs.id)
    key = lo.astype(np.int64) * n_seg + hi
    pairs, inv = np.unique(key, return_inverse=True)
    m = len(pairs)
    pa, pb = pairs // n_seg, pairs % n_seg
    sub = {k: v[cross] for k, v in e.items()}
    count = _sum_by(inv, m, sub["count"])
    bsum = _sum_by(inv, m, sub["sum"])
    hist = _sum_by(inv, m, sub["hist"])
    dsum = _sum_by(inv, m, sub["dark_sum"])
    dcount = _sum_by(inv, m, sub["dark_count"])
    dhist = _sum_by(inv, m, sub["dark_hist"])
    score = np.full(m, np.inf)
    s = np.where(np.isnan(sub["score"]), np.inf, sub["score"])
    np.minimum.at(score, inv, s)
    score[~np.isfinite(score)] = np.nan
    best = _argmax_by(inv, m, sub["count"])
    fu, fv = sub["u"][best], sub["v"][best]
    # orient the representative fragments like (a, b)
    fu_seg = segs.of_frag[np.searchsorted(fid, fu)]
    frag_a = np.where(fu_seg == pa, fu, fv)
    frag_b = np.where(fu_seg == pa, fv, fu)
    point = np.stack([sub[f"rep_{c}"][best] for c in "zyx"], axis=1)

    shp = segs.shape()
    size = shp["n"]
    sa, sb = size[pa], size[pb]
    small = np.minimum(sa, sb)
    eig = np.sqrt(shp["eig"])
    elong = eig[:, 0] / np.maximum(eig[:, 1], 0.5)
    ax_a, ax_b = shp["axis"][pa], shp["axis"][pb]
    d = shp["centroid"][pb] - shp["centroid"][pa]
    dist = np.linalg.norm(d, axis=1)
    dn = d / np.maximum(dist, 1e-9)[:, None]
    through = 0.5 * (np.abs((ax_a * dn).sum(1)) + np.abs((ax_b * dn).sum(1)))
    feats = {
        "log_contact": np.log1p(count),
        "bnd_mean": bsum / np.maximum(count, 1),
        "bnd_q10": histogram_quantile(hist, 0.1),
        "bnd_q50": histogram_quantile(hist, 0.5),
        "bnd_q90": histogram_quantile(hist, 0.9),
        "score": score,
        "dark_mean": dsum / np.maximum(dcount, 1),
        "dark_q50": histogram_quantile(dhist, 0.5),
        "dark_q90": histogram_quantile(dhist, 0.9),
        "log_size_min": np.log1p(small),
        "log_size_max": np.log1p(np.maximum(sa, sb)),
        "contact_rel": count / np.maximum(small, 1) ** (2 / 3),
        "frags_min": np.minimum(segs.n_frags[pa], segs.n_frags[pb]).astype(np.float64),
        "frags_max": np.maximum(segs.n_frags[pa], segs.n_frags[pb]).astype(np.float64),
        "elong_min": np.minimum(elong[pa], elong[pb]),
        "elong_max": np.maximum(elong[pa], elong[pb]),
        "axis_align": np.abs((ax_a * ax_b).sum(1)),
        "axis_through": through,
        "gap_rel": dist / np.maximum(eig[pa, 0] + eig[pb, 0], 1e-9),
        "raw_diff": np.abs(shp["raw_mean"][pa] - shp["raw_mean"][pb]),
        "bnd_in_diff": np.abs(shp["bnd_mean"][pa] - shp["bnd_mean"][pb]),
    }
    features = np.stack([feats[k] for k in PAIR_FEATURES], axis=1)
    return PairCandidates(
        segs.id[pa], segs.id[pb], frag_a, frag_b, point, features.astype(np.float64)
    )
