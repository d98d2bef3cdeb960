"""Ground truth on tables: the fragment x ground-truth contingency table (computed blockwise once),
from which the VI of any lookup table, the true label of a segment pair (same neuron or not),
and the true label of a proposed split follow without touching the volumes again."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.errors import InputError
from pipeline.evaluate import Contingency, scores_from_table
from pipeline.geometry import Roi
from pipeline.io.volume import open_volume
from pipeline.lut import Lut


@dataclass(frozen=True)
class FragmentTruth:
    """Voxels of each (fragment, ground-truth id) pair; ground-truth 0 left out."""

    fragment: np.ndarray
    gt: np.ndarray
    count: np.ndarray

    @classmethod
    def from_volumes(cls, fragments_url: str, gt_url: str, block: int = 128) -> FragmentTruth:
        fvol, gvol = open_volume(fragments_url), open_volume(gt_url)
        if (fvol.shape, fvol.voxel_size, fvol.offset) != (gvol.shape, gvol.voxel_size, gvol.offset):
            raise InputError(
                f"ground truth {gt_url} ({gvol.shape}, {gvol.voxel_size} nm, offset "
                f"{gvol.offset}) does not match the fragments {fragments_url} ({fvol.shape}, "
                f"{fvol.voxel_size} nm, {fvol.offset}); crop it to the fragments"
            )
        table = Contingency()
        vs = fvol.voxel_size
        for z in range(0, fvol.shape[0], block):
            for y in range(0, fvol.shape[1], block):
                for x in range(0, fvol.shape[2], block):
                    vox = Roi.from_bounds(
                        (z, y, x),
                        [min(a + block, s) for a, s in zip((z, y, x), fvol.shape, strict=True)],
                    )
                    roi = vox.to_world(vs).shift(fvol.offset)
                    table.add_block(fvol.read(roi), gvol.read(roi), ignore_gt_zero=True)
        f, g, c = table.table()
        return cls(f, g, c)

    @classmethod
    def from_arrays(cls, fragments: np.ndarray, gt: np.ndarray) -> FragmentTruth:
        table = Contingency()
        table.add_block(fragments, gt, ignore_gt_zero=True)
        return cls(*table.table())

    def scores(self, lut: Lut) -> dict[str, float]:
        """VI split/merge and adapted Rand of the segmentation ``lut[fragments]``."""
        seg = lut.lookup(self.fragment)
        table = Contingency()
        table.add(seg, self.gt, self.count)
        return scores_from_table(*table.table())

    def majority_oracle(self) -> dict[str, float]:
        """Scores of the oracle agglomeration of these fragments: each fragment joined to the
        neuron holding most of its voxels (GALA's "best possible" segmentation). What no merge
        threshold can beat: the fragments' own errors (a fragment across a boundary) remain."""
        ids = np.unique(self.fragment)
        fragments, neuron, _, _ = self.segment_majority(Lut.from_arrays(ids, ids))
        return self.scores(Lut.from_arrays(fragments, neuron))

    def segment_majority(self, lut: Lut) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(segment ids, majority gt id, voxels of it, labelled voxels) per segment."""
        return _majority(lut.lookup(self.fragment), self.gt, self.count)

    def group_majority(self, groups: dict[int, np.ndarray]) -> dict[int, tuple[int, float, int]]:
        """For named groups of fragments: (majority gt, its fraction, labelled voxels)."""
        out = {}
        for name, frags in groups.items():
            pick = np.isin(self.fragment, frags)
            if not pick.any():
                out[name] = (0, 0.0, 0)
                continue
            g, c = self.gt[pick], self.count[pick]
            ug, inv = np.unique(g, return_inverse=True)
            tot = np.bincount(inv, weights=c)
            k = int(np.argmax(tot))
            out[name] = (int(ug[k]), float(tot[k] / tot.sum()), int(tot.sum()))
        return out


def _majority(seg: np.ndarray, gt: np.ndarray, count: np.ndarray):
    if len(seg) == 0:
        e = np.zeros(0, np.uint64)
        return e, e, np.zeros(0, np.int64), np.zeros(0, np.int64)
    table = Contingency()
    table.add(seg.astype(np.uint64), gt, count)
    s, g, c = table.table()  # sorted by (seg, gt)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    total = np.add.reduceat(c, starts)
    order = np.lexsort((-c, s))  # within a segment, the largest count first
    best = order[starts]
    return s[starts], g[best], c[best], total
