"""Merge-error candidates: segments that probably hold two neurons, each with a proposed split.

For a segment of several fragments, its own fragment graph is agglomerated again (mean
boundary, as the agglomerate stage does); the last merge of that hierarchy joins its two most
separated parts. The proposal is the minimum cut (``editlog_graph.min_cut``) between the
largest fragment of each of the two parts, so the cut may follow a thinner or darker path than
the hierarchy's boundary. Features of the proposal: how strong the internal boundary is (level
of the last merge; boundary and darkness on the cut), how thin the neck is (cut area against the
smaller side's size), the sizes of the two sides, and whether the two sides' principal axes
cross (two neurites touching) rather than continue (one neurite).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.correct.tables import FRAG_SUMS, Segments, Tables, moments
from pipeline.proofread.graph import min_cut
from pipeline.seg.agglomeration import agglomerate
from pipeline.seg.unionfind import components

SPLIT_FEATURES = [
    "last_level",
    "cut_bnd_mean",
    "cut_dark_mean",
    "log_cut_count",
    "log_cut_value",
    "log_side_min",
    "log_side_max",
    "neck_rel",
    "n_frags",
    "side_frac",
    "elong_seg",
    "axis_cross",
    "score_max",
]


@dataclass
class SplitCandidates:
    segment: np.ndarray
    source: np.ndarray  # a fragment on the side that keeps the segment id
    sink: np.ndarray  # a fragment on the side that becomes a new segment
    moved: list[np.ndarray] = field(default_factory=list)  # fragments of the sink side
    kept: list[np.ndarray] = field(default_factory=list)
    point: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, len(SPLIT_FEATURES))))

    def __len__(self) -> int:
        return len(self.segment)


def split_candidates(tables: Tables, segs: Segments, min_fragments: int = 2) -> SplitCandidates:
    """One proposal per segment of at least ``min_fragments`` fragments with internal edges."""
    e, fid = tables.edge, tables.frag["id"]
    iu = segs.of_frag[np.searchsorted(fid, e["u"])]
    iv = segs.of_frag[np.searchsorted(fid, e["v"])]
    inside = np.flatnonzero(iu == iv)
    order = inside[np.argsort(iu[inside], kind="stable")]
    bounds = np.r_[0, np.flatnonzero(np.diff(iu[order])) + 1, len(order)]
    frag_order = np.argsort(segs.of_frag, kind="stable")
    fbounds = np.searchsorted(segs.of_frag[frag_order], np.arange(len(segs.id) + 1))
    rows, out = [], SplitCandidates(np.zeros(0, np.uint64), np.zeros(0), np.zeros(0))
    seg_idx, srcs, snks, points = [], [], [], []
    for k in range(len(bounds) - 1):
        idx = order[bounds[k] : bounds[k + 1]]
        s = int(iu[idx[0]])
        members = frag_order[fbounds[s] : fbounds[s + 1]]
        if len(members) < min_fragments:
            continue
        prop = _propose(tables, members, idx)
        if prop is None:
            continue
        feats, src, snk, moved_mask, point = prop
        seg_idx.append(s)
        srcs.append(src)
        snks.append(snk)
        points.append(point)
        out.moved.append(fid[members][moved_mask])
        out.kept.append(fid[members][~moved_mask])
        rows.append(feats)
    if not rows:
        return out
    out.segment = segs.id[np.array(seg_idx)]
    out.source = np.array(srcs, np.uint64)
    out.sink = np.array(snks, np.uint64)
    out.point = np.array(points, np.int64)
    out.features = np.array(rows, np.float64)
    return out


def _propose(tables: Tables, members: np.ndarray, edge_idx: np.ndarray):
    e, f = tables.edge, tables.frag
    fid = f["id"][members]  # sorted (members ascend, ids sorted)
    sub = {k: e[k][edge_idx] for k in ("u", "v", "count", "sum", "score", "dark_sum", "dark_count")}
    lu, lv = np.searchsorted(fid, sub["u"]), np.searchsorted(fid, sub["v"])
    levels = agglomerate(len(fid), lu, lv, sub["count"], sub["sum"])
    finite = np.isfinite(levels)
    if not finite.any():
        return None
    last = float(levels[finite].max())
    below = finite & (levels < last)
    parts = components(len(fid), lu[below], lv[below])
    size = f["n"][members]
    part_size = np.bincount(parts, weights=size)
    if len(part_size) < 2:
        return None
    p1, p2 = np.argsort(-part_size)[:2]
    src = int(np.argmax(np.where(parts == p1, size, -1)))
    snk = int(np.argmax(np.where(parts == p2, size, -1)))
    mask, value = min_cut(fid, sub, [fid[src]], [fid[snk]])
    if mask.all() or not mask.any():
        return None
    cut = mask[lu] != mask[lv]
    cut_count = sub["count"][cut].sum()
    side = [np.flatnonzero(~mask), np.flatnonzero(mask)]
    shp = moments({k: np.array([f[k][members][s].sum() for s in side]) for k in FRAG_SUMS})
    whole = moments({k: np.array([f[k][members].sum()]) for k in FRAG_SUMS})
    eig = np.sqrt(whole["eig"][0])
    n1, n2 = shp["n"]
    # a segment whose two sides do not touch at all has no cut: its means are undefined (NaN)
    cut_dark = sub["dark_count"][cut].sum()
    feats = [
        last,
        sub["sum"][cut].sum() / cut_count if cut_count else np.nan,
        sub["dark_sum"][cut].sum() / cut_dark if cut_dark else np.nan,
        np.log1p(cut_count),
        np.log1p(value),
        np.log1p(min(n1, n2)),
        np.log1p(max(n1, n2)),
        cut_count / max(min(n1, n2), 1) ** (2 / 3),
        float(len(fid)),
        min(n1, n2) / max(n1 + n2, 1),
        eig[0] / max(eig[1], 0.5),
        1.0 - abs(float((shp["axis"][0] * shp["axis"][1]).sum())),
        float(np.nanmax(sub["score"])) if np.isfinite(sub["score"]).any() else np.nan,
    ]
    if cut.any():
        j = np.flatnonzero(cut)[np.argmax(sub["count"][cut])]
        point = [int(e[f"rep_{c}"][edge_idx[j]]) for c in "zyx"]
    else:
        point = [int(f[f"rep_{c}"][members][snk]) for c in "zyx"]
    return feats, int(fid[src]), int(fid[snk]), mask, point
