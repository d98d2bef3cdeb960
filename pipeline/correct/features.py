"""Blockwise fragment and contact statistics for error detection (beyond the region graph's
boundary statistics): per fragment its size, moments of its voxel coordinates (for centroid and
shape), mean raw intensity and boundary, and one voxel inside it; per touching fragment pair the
raw intensity on the contact (dark = membrane in EM) and where the contact is.

Tables (under the segmentation's tables root, one per block, like the graph stage)::

    correct/fragments/<block>.parquet  id, n, s_z.., s_zz.., raw_sum, raw_sq, bnd_sum, rep_z..
    correct/contacts/<block>.parquet   u, v, count, dark_sum, dark_hist, c_z, c_y, c_x, rep_z..

A block owns the voxels of its write ROI and the contacts from them to the + side (it reads one
voxel more there), so every voxel and every contact face is counted once, as in the graph stage.
Coordinates are global voxel indices (z, y, x).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from distributed import Client

from pipeline.errors import InputError
from pipeline.io.boundary import read_boundary
from pipeline.io.tables import block_table, read_graph_meta, write_table
from pipeline.io.urls import refuse_overwriting
from pipeline.io.volume import open_volume
from pipeline.runner.blockwise import Block, RunReport, run_blockwise
from pipeline.runner.cache import cached
from pipeline.runner.tasks import grid_task

DARK_BINS = 16


def _per_label(inv: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    return np.bincount(inv, weights=values, minlength=n)


def fragment_stats(frag: np.ndarray, raw: np.ndarray, bnd: np.ndarray, origin: Sequence[int]):
    """Per-fragment sums over the voxels of ``frag`` (0 skipped); ``origin`` = global voxel
    index of frag[0, 0, 0]."""
    flat = frag.ravel()
    ids, first, inv = np.unique(flat, return_index=True, return_inverse=True)
    n = len(ids)
    zz, yy, xx = np.indices(frag.shape, dtype=np.float64)
    coords = [zz.ravel() + origin[0], yy.ravel() + origin[1], xx.ravel() + origin[2]]
    out = {"id": ids.astype(np.uint64), "n": np.bincount(inv, minlength=n).astype(np.int64)}
    names = "zyx"
    for i in range(3):
        out[f"s_{names[i]}"] = _per_label(inv, n, coords[i])
        for j in range(i, 3):
            out[f"s_{names[i]}{names[j]}"] = _per_label(inv, n, coords[i] * coords[j])
    r = raw.ravel().astype(np.float64)
    out["raw_sum"] = _per_label(inv, n, r)
    out["raw_sq"] = _per_label(inv, n, r * r)
    out["bnd_sum"] = _per_label(inv, n, bnd.ravel().astype(np.float64))
    rep = np.unravel_index(first, frag.shape)
    for i in range(3):
        out[f"rep_{names[i]}"] = (rep[i] + origin[i]).astype(np.int64)
    keep = out["id"] != 0
    return {k: v[keep] for k, v in out.items()}


def contact_stats(frag: np.ndarray, dark: np.ndarray, owned: Sequence[int], origin: Sequence[int]):
    """Per fragment pair (u < v): contact faces, sum and histogram of the darker voxel's
    darkness (1 - raw/255) on them, sum of face positions (the lower voxel), and one face."""
    us, vs, ds, pos = [], [], [], []
    for axis in range(3):
        n = min(owned[axis], frag.shape[axis] - 1)
        if n <= 0:
            continue
        a = [slice(0, o) for o in owned]
        b = [slice(0, o) for o in owned]
        a[axis], b[axis] = slice(0, n), slice(1, n + 1)
        la, lb = frag[tuple(a)], frag[tuple(b)]
        diff = (la != lb) & (la != 0) & (lb != 0)
        idx = np.nonzero(diff)
        us.append(la[diff])
        vs.append(lb[diff])
        ds.append(np.maximum(dark[tuple(a)][diff], dark[tuple(b)][diff]))
        pos.append(np.stack(idx, axis=1))
    if not us or sum(len(u) for u in us) == 0:
        z = np.zeros(0)
        return {
            "u": z.astype(np.uint64),
            "v": z.astype(np.uint64),
            "count": z.astype(np.int64),
            "dark_sum": z,
            "dark_hist": np.zeros((0, DARK_BINS), np.int64),
            **{f"c_{c}": z for c in "zyx"},
            **{f"rep_{c}": z.astype(np.int64) for c in "zyx"},
        }
    la, lb = np.concatenate(us), np.concatenate(vs)
    d = np.concatenate(ds).astype(np.float64)
    p = np.concatenate(pos) + np.asarray(origin)[None, :]
    u, v = np.minimum(la, lb), np.maximum(la, lb)
    ids, code = np.unique(np.concatenate([u, v]), return_inverse=True)
    key = code[: len(u)].astype(np.int64) * len(ids) + code[len(u) :]
    keys, first, inv = np.unique(key, return_index=True, return_inverse=True)
    m = len(keys)
    out = {
        "u": ids[keys // len(ids)].astype(np.uint64),
        "v": ids[keys % len(ids)].astype(np.uint64),
        "count": np.bincount(inv, minlength=m).astype(np.int64),
        "dark_sum": np.bincount(inv, weights=d, minlength=m),
    }
    bins = np.clip((d * DARK_BINS).astype(np.int64), 0, DARK_BINS - 1)
    out["dark_hist"] = np.bincount(inv * DARK_BINS + bins, minlength=m * DARK_BINS).reshape(
        m, DARK_BINS
    )
    for i, c in enumerate("zyx"):
        out[f"c_{c}"] = np.bincount(inv, weights=p[:, i].astype(np.float64), minlength=m)
        out[f"rep_{c}"] = p[first, i].astype(np.int64)
    return out


class FeatureBlock:
    def __init__(self, fragments_url: str, raw_url: str, boundary_url: str, root: str):
        self.fragments_url, self.raw_url = fragments_url, raw_url
        self.boundary_url, self.root = boundary_url, root

    def __call__(self, block: Block) -> None:
        fvol = cached(f"vol:r:{self.fragments_url}", lambda: open_volume(self.fragments_url))
        rvol = cached(f"vol:r:{self.raw_url}", lambda: open_volume(self.raw_url))
        bvol = cached(f"vol:r:{self.boundary_url}", lambda: open_volume(self.boundary_url))
        vs = fvol.voxel_size
        ext = block.write_roi.grow((0, 0, 0), vs).intersect(fvol.roi)
        frag, raw = fvol.read(ext), rvol.read(ext)
        owned = tuple(s // v for s, v in zip(block.write_roi.shape, vs, strict=True))
        origin = tuple((b - o) // v for b, o, v in zip(ext.begin, fvol.offset, vs, strict=True))
        own = tuple(slice(0, o) for o in owned)
        bnd = read_boundary(bvol, block.write_roi)
        write_table(
            block_table(self.root, "correct/fragments", block.block_id),
            fragment_stats(frag[own], raw[own], bnd, origin),
        )
        dark = 1.0 - np.asarray(raw, np.float32) / _raw_max(raw.dtype)
        write_table(
            block_table(self.root, "correct/contacts", block.block_id),
            contact_stats(frag, dark, owned, origin),
        )


def _raw_max(dtype: np.dtype) -> float:
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return 1.0


def run_features(
    fragments_url: str,
    raw_url: str,
    boundary_url: str,
    root: str,
    client: Client | None = None,
    progress: bool = True,
) -> RunReport:
    """Write the feature tables of ``fragments_url`` on the region graph's block grid."""
    refuse_overwriting([root], [fragments_url, raw_url, boundary_url], "correction features")
    meta = read_graph_meta(root)
    fvol = open_volume(fragments_url)
    for what, url in (("raw image", raw_url), ("boundary map", boundary_url)):
        vol = open_volume(url)
        if (vol.shape, vol.voxel_size, vol.offset) != (fvol.shape, fvol.voxel_size, fvol.offset):
            raise InputError(
                f"{what} {url} (shape {vol.shape}, voxel size {vol.voxel_size}, offset "
                f"{vol.offset}) does not match the fragments {fragments_url} ({fvol.shape}, "
                f"{fvol.voxel_size}, {fvol.offset}); use the volumes the fragments came from"
            )
        if vol.channels is not None and what == "raw image":
            raise InputError(f"raw image {url} has {vol.channels} channels; give one channel")
    task = grid_task(
        "correct-features",
        meta,
        FeatureBlock(fvol.url, raw_url, boundary_url, root),
        f"{root}/correct",
        {"fragments": fvol.url, "raw": raw_url, "boundary": boundary_url, "v": 1},
    )
    return run_blockwise(task, client=client, progress=progress)
