"""Applying corrections to a lookup table, and what ground truth says about candidates.

Auto-correction works like a learned agglomeration (as in GALA): first the confident splits,
then rounds of merges. In a round every touching pair of segments is scored again (sizes,
shapes and contacts change as segments grow) and the most confident pairs above the threshold
are merged, each segment at most once per round, so a single wrong decision cannot chain many
segments together before they are looked at again. The actions are returned in order, so the
correct stage can replay them as edits in the edit log and get the same table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from pipeline.correct.merge_errors import SplitCandidates
from pipeline.correct.split_errors import PairCandidates, pair_candidates
from pipeline.correct.tables import Segments, Tables
from pipeline.correct.truth import FragmentTruth
from pipeline.lut import Lut
from pipeline.seg.unionfind import components

Predict = Callable[[str, np.ndarray, np.ndarray], np.ndarray]  # (kind, features, points) -> p


@dataclass(frozen=True)
class Action:
    op: str  # "split" or "merge"
    p: float
    segment: int = 0  # split: the segment; merge: unused
    fragments: tuple[int, ...] = ()  # split: fragments moved; merge: the two contact fragments


def apply_split(lut: Lut, segment: int, moved: np.ndarray, new_id: int) -> Lut | None:
    idx = np.searchsorted(lut.fragment, moved)
    if not (lut.segment[idx] == segment).all():
        return None
    seg = lut.segment.copy()
    seg[idx] = new_id
    return Lut(lut.fragment, seg)


def apply_merges(lut: Lut, frag_a: np.ndarray, frag_b: np.ndarray) -> Lut:
    """Join the segments holding each (frag_a, frag_b); a joined segment keeps its smallest id."""
    if len(frag_a) == 0:
        return lut
    seg = lut.segment
    sa, sb = lut.lookup(frag_a), lut.lookup(frag_b)
    ids, inv = np.unique(np.concatenate([seg, sa, sb]), return_inverse=True)
    n = len(seg)
    comp = components(len(ids), inv[n : n + len(sa)], inv[n + len(sa) :])
    smallest = np.full(comp.max() + 1, np.iinfo(np.uint64).max, np.uint64)
    np.minimum.at(smallest, comp, ids)
    return Lut(lut.fragment, smallest[comp[inv[:n]]])


def auto_correct(
    lut: Lut,
    tables: Tables,
    splits: SplitCandidates,
    split_p: np.ndarray,
    predict: Predict,
    thresholds: dict[str, float],
    max_rounds: int = 50,
) -> tuple[Lut, list[Action]]:
    """Splits with p >= thresholds["split"], then merge rounds at thresholds["pair"]."""
    actions: list[Action] = []
    next_id = int(max(lut.segment.max(), lut.fragment.max())) + 1 if len(lut) else 1
    for i in np.argsort(-split_p, kind="stable"):
        if split_p[i] < thresholds["split"]:
            break
        fixed = apply_split(lut, int(splits.segment[i]), splits.moved[i], next_id)
        if fixed is None:
            continue
        lut, next_id = fixed, next_id + 1
        actions.append(
            Action(
                "split", float(split_p[i]), int(splits.segment[i]), tuple(splits.moved[i].tolist())
            )
        )
    for _ in range(max_rounds):
        pairs = pair_candidates(tables, Segments.of(tables, lut))
        p = predict("pair", pairs.features, pairs.point)
        used: set[int] = set()
        sel = []
        for i in np.argsort(-p, kind="stable"):
            if p[i] < thresholds["pair"]:
                break
            a, b = int(pairs.a[i]), int(pairs.b[i])
            if a in used or b in used:
                continue
            used.update((a, b))
            sel.append(i)
        if not sel:
            break
        lut = apply_merges(lut, pairs.frag_a[sel], pairs.frag_b[sel])
        actions += [
            Action("merge", float(p[i]), 0, (int(pairs.frag_a[i]), int(pairs.frag_b[i])))
            for i in sel
        ]
    return lut, actions


def apply_selected(
    lut: Lut,
    pairs: PairCandidates,
    merge_sel: Iterable[int],
    splits: SplitCandidates,
    split_sel: Iterable[int],
) -> Lut:
    """The table after the selected splits, then the selected merges, in one pass."""
    next_id = int(max(lut.segment.max(), lut.fragment.max())) + 1 if len(lut) else 1
    for i in split_sel:
        fixed = apply_split(lut, int(splits.segment[i]), splits.moved[i], next_id)
        if fixed is not None:
            lut, next_id = fixed, next_id + 1
    merge_sel = list(merge_sel)
    return apply_merges(lut, pairs.frag_a[merge_sel], pairs.frag_b[merge_sel])


def pair_truth(truth: FragmentTruth, lut: Lut, pairs: PairCandidates) -> np.ndarray:
    """1 where both segments of a pair are mostly the same ground-truth neuron (a split error)."""
    segs, major, _, labelled = truth.segment_majority(lut)

    def major_of(ids):
        if len(segs) == 0:
            return np.zeros(len(ids), np.uint64)
        pos = np.minimum(np.searchsorted(segs, ids), len(segs) - 1)
        found = (segs[pos] == ids) & (labelled[pos] > 0)
        return np.where(found, major[pos], 0)

    ma, mb = major_of(pairs.a), major_of(pairs.b)
    return ((ma == mb) & (ma != 0)).astype(np.int64)


def split_truth(truth: FragmentTruth, splits: SplitCandidates) -> np.ndarray:
    """1 where the two sides of a proposed split are mostly different neurons (a merge error)."""
    out = np.zeros(len(splits), np.int64)
    for i in range(len(splits)):
        m = truth.group_majority({0: splits.kept[i], 1: splits.moved[i]})
        (g0, _, n0), (g1, _, n1) = m[0], m[1]
        out[i] = int(g0 != g1 and n0 > 0 and n1 > 0)
    return out
