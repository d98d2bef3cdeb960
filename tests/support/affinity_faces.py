"""Numpy references for affinities on contact faces, and a tiny affinity network that computes
a known function, for the affinity tests of the region graph and the fragments."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from models.spec import ModelSpec


def reference_faces(
    labels: np.ndarray, affs: np.ndarray, offsets: Sequence[Sequence[int]]
) -> dict[tuple[int, int], tuple[int, float]]:
    """Per label pair (u < v): the number of faces between them and the sum of 1 - affinity
    over those faces, from the definition of the offsets (channel c at voxel p = affinity
    between p and p + offsets[c])."""
    out: dict[tuple[int, int], tuple[int, float]] = {}
    for d in range(3):
        c = next(i for i, o in enumerate(offsets) if sum(map(abs, o)) == 1 and o[d] != 0)
        n = labels.shape[d]
        lo, hi = [slice(None)] * 3, [slice(None)] * 3
        lo[d], hi[d] = slice(0, n - 1), slice(1, n)
        a, b = labels[tuple(lo)], labels[tuple(hi)]
        # the face (p, p + e_d) is stored at p + e_d when the offset is -e_d, else at p
        face = affs[c][tuple(hi)] if offsets[c][d] < 0 else affs[c][tuple(lo)]
        differ = a != b
        u = np.minimum(a, b)[differ]
        v = np.maximum(a, b)[differ]
        val = 1.0 - face[differ].astype(np.float64)
        for key, x in zip(zip(u.tolist(), v.tolist(), strict=True), val.tolist(), strict=True):
            cnt, tot = out.get(key, (0, 0.0))
            out[key] = (cnt + 1, tot + x)
    return out


class BrightPairs(nn.Module):
    """Affinity of p and p + o = sigmoid(gain * (min(x[p], x[p + o]) - level)) of the normalised
    raw x: two bright voxels belong together, a dark (membrane) voxel separates. 'Same'
    padded (edges replicated); carries the ``spec`` the predict stage reads."""

    def __init__(self, offsets: Sequence[Sequence[int]], gain: float = 4.0, level: float = 0.0):
        super().__init__()
        self.offsets = [tuple(int(v) for v in o) for o in offsets]
        self.reach = max(abs(v) for o in self.offsets for v in o)
        self.gain, self.level = gain, level
        self.spec = ModelSpec(
            3, 1, len(self.offsets), "affinity", (1, 1, 1), (2 * self.reach + 1,) * 3,
            {"mean": 128.0, "std": 40.0}, tuple(self.offsets),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.reach
        xp = nn.functional.pad(x, (r, r, r, r, r, r), mode="replicate")
        z, y, w = x.shape[2:]
        outs = []
        for oz, oy, ox in self.offsets:
            shifted = xp[:, :, r + oz : r + oz + z, r + oy : r + oy + y, r + ox : r + ox + w]
            outs.append(self.gain * (torch.minimum(x, shifted) - self.level))
        return torch.cat(outs, dim=1)
