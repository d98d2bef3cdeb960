"""The tables error detection works on, gathered from the per-block tables once per run:
fragments (size, moments, intensities), fragment edges (boundary statistics from the graph
stage, merge scores from agglomeration, darkness and position from ``correct_features``), and
for a lookup table the segments (moments summed over their fragments, principal axes).

Everything here is table arithmetic (sorts, bincounts): memory grows with the number of
fragments and edges, never with the number of voxels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.errors import InputError
from pipeline.io.tables import block_table, iter_block_tables, read_graph_meta, table_exists
from pipeline.lut import Lut

FRAG_SUMS = ["n", "s_z", "s_y", "s_x", "s_zz", "s_zy", "s_zx", "s_yy", "s_yx", "s_xx"]
FRAG_SUMS += ["raw_sum", "raw_sq", "bnd_sum"]


def _cat(tables: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    keys = tables[0].keys()
    return {k: np.concatenate([t[k] for t in tables]) for k in keys}


def _group(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inv = np.unique(ids, return_inverse=True)
    return uniq, inv


def _sum_by(inv: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    if values.ndim == 1:
        return np.bincount(inv, weights=values.astype(np.float64), minlength=n)
    out = np.zeros((n, values.shape[1]), np.float64)
    np.add.at(out, inv, values)
    return out


def _argmax_by(inv: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """Row index of the largest value in each group."""
    if len(inv) == 0:  # no rows (a segmentation without touching segments): no groups
        return np.zeros(n, np.int64)
    order = np.lexsort((-values, inv))
    starts = np.r_[0, np.flatnonzero(np.diff(inv[order])) + 1]
    out = np.zeros(n, np.int64)
    out[inv[order][starts]] = order[starts]
    return out


@dataclass
class Tables:
    """Fragment and edge tables of one fragments volume (ids sorted, edges u < v sorted)."""

    frag: dict[str, np.ndarray]  # id, the FRAG_SUMS, rep_z/y/x
    edge: dict[str, np.ndarray]  # u, v, count, sum, hist, score, dark_sum, dark_hist, c_*, rep_*
    voxel_size: tuple[int, int, int]
    offset: tuple[int, int, int]
    shape: tuple[int, int, int]  # voxels

    @classmethod
    def read(cls, root: str) -> Tables:
        meta = read_graph_meta(root)
        nb = int(meta["num_blocks"])
        if not table_exists(block_table(root, "correct/fragments", 0)):
            raise InputError(
                f"no error-detection features under {root}: run the correct stage's feature "
                "pass (run_features) first"
            )
        frags = _cat([t for _, t in iter_block_tables(root, "correct/fragments", nb)])
        ids, inv = _group(frags["id"])
        frag = {"id": ids.astype(np.uint64)}
        for k in FRAG_SUMS:
            frag[k] = _sum_by(inv, len(ids), frags[k])
        best = _argmax_by(inv, len(ids), frags["n"].astype(np.float64))
        for c in "zyx":
            frag[f"rep_{c}"] = frags[f"rep_{c}"][best]

        cols = ["u", "v", "count", "sum", "hist"]
        edges = _cat([t for _, t in iter_block_tables(root, "graph/edges", nb, cols)])
        scored = table_exists(block_table(root, "agglomeration/scores", 0))
        if scored:
            sc = _cat([t for _, t in iter_block_tables(root, "agglomeration/scores", nb)])
        contacts = _cat([t for _, t in iter_block_tables(root, "correct/contacts", nb)])
        all_ids = ids
        key = _pair_key(edges["u"], edges["v"], all_ids)
        ekeys, einv = np.unique(key, return_inverse=True)
        m = len(ekeys)
        edge = {
            "u": all_ids[ekeys // len(all_ids)],
            "v": all_ids[ekeys % len(all_ids)],
            "count": _sum_by(einv, m, edges["count"]),
            "sum": _sum_by(einv, m, edges["sum"]),
            "hist": _sum_by(einv, m, edges["hist"].astype(np.float64)),
        }
        edge["score"] = np.full(m, np.nan)
        if scored:
            pos = _find(ekeys, _pair_key(sc["u"], sc["v"], all_ids))
            ok = pos >= 0
            s = np.full(m, np.inf)
            np.minimum.at(s, pos[ok], sc["score"][ok])
            edge["score"] = np.where(np.isfinite(s), s, np.nan)
        pos = _find(ekeys, _pair_key(contacts["u"], contacts["v"], all_ids))
        ok = pos >= 0
        edge["dark_sum"] = _sum_by(pos[ok], m, contacts["dark_sum"][ok])
        edge["dark_count"] = _sum_by(pos[ok], m, contacts["count"][ok].astype(np.float64))
        edge["dark_hist"] = _sum_by(pos[ok], m, contacts["dark_hist"][ok].astype(np.float64))
        for c in "zyx":
            edge[f"c_{c}"] = _sum_by(pos[ok], m, contacts[f"c_{c}"][ok])
        best = _argmax_by(pos[ok], m, contacts["count"][ok].astype(np.float64))
        for c in "zyx":
            edge[f"rep_{c}"] = contacts[f"rep_{c}"][ok][best]
        vs = tuple(int(v) for v in meta["voxel_size"])
        shape = tuple(int(v) for v in meta["shape"])
        return cls(frag, edge, vs, tuple(int(o) for o in meta["offset"]), shape)


def _pair_key(u: np.ndarray, v: np.ndarray, ids: np.ndarray) -> np.ndarray:
    iu = np.searchsorted(ids, u).astype(np.int64)
    iv = np.searchsorted(ids, v).astype(np.int64)
    iu, iv = np.minimum(iu, len(ids) - 1), np.minimum(iv, len(ids) - 1)
    return np.minimum(iu, iv) * len(ids) + np.maximum(iu, iv)


def _find(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Index of each key in ``sorted_keys``; -1 where absent."""
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == keys, pos, -1)


@dataclass
class Segments:
    """Per-segment sums (from the fragments of each segment under a lookup table)."""

    id: np.ndarray  # sorted segment ids
    of_frag: np.ndarray  # index into ``id`` for each fragment of ``Tables.frag``
    sums: dict[str, np.ndarray]
    n_frags: np.ndarray

    @classmethod
    def of(cls, tables: Tables, lut: Lut) -> Segments:
        seg = lut.lookup(tables.frag["id"])
        ids, inv = _group(seg)
        sums = {k: _sum_by(inv, len(ids), tables.frag[k]) for k in FRAG_SUMS}
        return cls(ids, inv, sums, np.bincount(inv, minlength=len(ids)))

    def shape(self) -> dict[str, np.ndarray]:
        """Centroid (voxels), principal axis (unit vector), eigenvalues (descending), raw mean
        and std, boundary mean of every segment."""
        return moments(self.sums)


def moments(s: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n = np.maximum(s["n"], 1.0)
    c = np.stack([s["s_z"], s["s_y"], s["s_x"]], axis=1) / n[:, None]
    names = "zyx"
    cov = np.zeros((len(n), 3, 3))
    for i in range(3):
        for j in range(i, 3):
            key = f"s_{names[i]}{names[j]}"
            cov[:, i, j] = cov[:, j, i] = s[key] / n - c[:, i] * c[:, j]
    w, vecs = np.linalg.eigh(cov)  # ascending
    w = np.clip(w[:, ::-1], 0.0, None)
    axis = vecs[:, :, -1]
    raw_mean = s["raw_sum"] / n
    raw_std = np.sqrt(np.clip(s["raw_sq"] / n - raw_mean**2, 0.0, None))
    return {
        "n": s["n"],
        "centroid": c,
        "axis": axis,
        "eig": w,
        "raw_mean": raw_mean,
        "raw_std": raw_std,
        "bnd_mean": s["bnd_sum"] / n,
    }
