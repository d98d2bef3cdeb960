"""Features of a region-graph edge for the learned merge score, computed from mergeable sums only:
the edge's contact ``count``, boundary ``sum`` and boundary histogram (all add up when two
edges are combined) and the two regions' voxel counts (add up when two regions merge; capped at
``SIZE_CAP``). So
re-featuring an edge after a merge costs O(bins), and the merged region's edges O(degree).

One compiled function (``fill_features``) serves both training (``edge_features``, over a
table) and the merge loop (``pipeline.seg.learned_loop``), so the two see the same floats.
"""

from __future__ import annotations

import numba
import numpy as np

FEATURES = (
    "mean",
    "q10",
    "q25",
    "q50",
    "q75",
    "q90",
    "hist_std",
    "low_fraction",
    "log_count",
    "log_size_small",  # capped at SIZE_CAP
    "log_size_large",
    "contact_per_surface",
)
N_FEATURES = len(FEATURES)
_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
# Region sizes enter the features capped: a region bigger than this (voxels; 27^3) counts as
# "big". Without the cap, a neuron that spans many blocks looks smaller in a block's local
# context than in the whole graph, and two-level agglomeration departs from the global one
# (VI 0.18 on FIB z 100-159 at 32x64x64 blocks); with it, they agree (VI 0.0 there).
SIZE_CAP = 20_000.0


@numba.njit(cache=True, nogil=True)
def _quantile(row, total, q):
    """Quantile ``q`` of one histogram row on [0, 1] (linear inside its bin, as
    ``rag.histogram_quantile``)."""
    nb = row.shape[0]
    target = q * total
    c = 0.0
    for j in range(nb):
        if c + row[j] >= target and row[j] > 0:
            frac = (target - c) / row[j]
            return (j + min(max(frac, 0.0), 1.0)) / nb
        c += row[j]
    return 1.0


@numba.njit(cache=True, nogil=True)
def fill_features(count, total, row, size_u, size_v, out):
    """Write the features (``FEATURES``) of one edge into ``out``."""
    nb = row.shape[0]
    h = 0.0
    m1 = 0.0
    m2 = 0.0
    low = 0.0
    for j in range(nb):
        c = (j + 0.5) / nb
        h += row[j]
        m1 += row[j] * c
        m2 += row[j] * c * c
        if c < 0.5:
            low += row[j]
    hn = max(h, 1.0)
    out[0] = total / max(count, 1.0)
    for k in range(5):
        out[1 + k] = _quantile(row, h, _QUANTILES[k]) if h > 0 else out[0]
    out[6] = np.sqrt(max(m2 / hn - (m1 / hn) ** 2, 0.0))
    out[7] = low / hn
    out[8] = np.log1p(count)
    small = min(size_u, size_v, SIZE_CAP)
    large = min(max(size_u, size_v), SIZE_CAP)
    out[9] = np.log1p(small)
    out[10] = np.log1p(large)
    out[11] = count / max(small, 1.0) ** (2.0 / 3.0)


@numba.njit(cache=True, nogil=True)
def _table_features(count, total, hist, size_u, size_v):
    x = np.empty((count.size, N_FEATURES))
    for e in range(count.size):
        fill_features(count[e], total[e], hist[e], size_u[e], size_v[e], x[e])
    return x


def edge_features(
    count: np.ndarray,
    total: np.ndarray,
    hist: np.ndarray,
    size_u: np.ndarray,
    size_v: np.ndarray,
) -> np.ndarray:
    """The (E, ``N_FEATURES``) feature table of edges given by their sums and their regions'
    sizes."""
    return _table_features(
        np.asarray(count, np.float64),
        np.asarray(total, np.float64),
        np.ascontiguousarray(hist, np.float64),
        np.asarray(size_u, np.float64),
        np.asarray(size_v, np.float64),
    )
