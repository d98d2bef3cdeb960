"""Compiled (numba) float32 filters for the fragments stage: a separable Gaussian with scipy's
kernel and "nearest" edges, and the seeds of the watershed (26-connected plateaus of local
maxima). They replace scipy.ndimage calls that computed in float64 and dominated a block's time;
results equal scipy's up to float32 rounding. Arrays are 3D (z, y, x); 2D callers add an axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from pipeline.seg.forest import find_root

TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default


def gaussian_kernel(sigma: float) -> np.ndarray:
    """scipy's 1D Gaussian taps (radius ``int(4 sigma + 0.5)``), normalised, as float32."""
    radius = int(TRUNCATE * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (float(sigma) ** 2) * x**2)
    return (phi / phi.sum()).astype(np.float32)


@numba.njit(cache=True, nogil=True)
def _pass_x(src, dst, w):
    r = (len(w) - 1) // 2
    nz, ny, nx = src.shape
    buf = np.empty(nx + 2 * r, np.float32)  # one row with edges extended
    acc = np.empty(nx, np.float32)  # a private accumulator lets LLVM vectorise the taps
    for z in range(nz):
        for y in range(ny):
            row = src[z, y]
            for i in range(r):
                buf[i] = row[0]
                buf[nx + r + i] = row[nx - 1]
            buf[r : r + nx] = row
            w0 = w[r]
            for i in range(nx):
                acc[i] = w0 * buf[r + i]
            for j in range(1, r + 1):
                wj = w[r + j]
                a = buf[r + j : r + j + nx]
                b = buf[r - j : r - j + nx]
                for i in range(nx):
                    acc[i] += wj * (a[i] + b[i])
            dst[z, y] = acc


@numba.njit(cache=True, nogil=True)
def _pass_yz(src, dst, w, axis):
    """One pass along z (``axis`` 0) or y (1): a row of ``dst`` is the weighted sum of the rows
    of ``src`` up to the kernel's radius away on that axis (edges extended)."""
    r = (len(w) - 1) // 2
    nz, ny, nx = src.shape
    for z in range(nz):
        for y in range(ny):
            out = dst[z, y]
            mid = src[z, y]
            for i in range(nx):
                out[i] = w[r] * mid[i]
            for j in range(1, r + 1):
                wj = w[r + j]
                if axis == 1:
                    up = src[z, min(y + j, ny - 1)]
                    down = src[z, max(y - j, 0)]
                else:
                    up = src[min(z + j, nz - 1), y]
                    down = src[max(z - j, 0), y]
                for i in range(nx):
                    out[i] += wj * (up[i] + down[i])


def _smooth_axis(axis: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> None:
    if axis == 2:
        _pass_x(src, dst, w)
    else:
        _pass_yz(src, dst, w, axis)


def gaussian(
    a: np.ndarray,
    sigmas: Sequence[float],
    out: np.ndarray | None = None,
    work: np.ndarray | None = None,
) -> np.ndarray:
    """Gaussian smoothing of a float32 array (2D or 3D) with one sigma per axis (0 = that axis
    is not smoothed), edges extended ("nearest"). Writes into ``out`` (a new array by default;
    not ``a``) and uses ``work`` (same shape and dtype) as scratch when given."""
    src = np.ascontiguousarray(a, dtype=np.float32)
    src3 = src[None] if src.ndim == 2 else src
    sig = [0.0] * (3 - src.ndim) + [float(s) for s in sigmas]
    passes = [(axis, gaussian_kernel(s)) for axis, s in enumerate(sig) if s > 0]
    passes = [(axis, w) for axis, w in passes if len(w) > 1]
    out = np.empty_like(src) if out is None else out
    if out.shape != src.shape or out.dtype != np.float32 or np.shares_memory(out, src):
        raise ValueError("out must be a float32 array of the input's shape, apart from it")
    out3 = out[None] if out.ndim == 2 else out
    if not passes:
        out3[...] = src3
        return out
    scratch = out3
    if len(passes) > 1:
        scratch = np.empty_like(src3) if work is None else (work[None] if work.ndim == 2 else work)
    cur = src3
    for k, (axis, w) in enumerate(passes):
        # alternate so that the last pass writes into out
        dst = out3 if (len(passes) - 1 - k) % 2 == 0 else scratch
        _smooth_axis(axis, cur, dst, w)
        cur = dst
    return out


@numba.njit(cache=True, nogil=True)
def _max3(src, dst, axis):
    nz, ny, nx = src.shape
    for z in range(nz):
        for y in range(ny):
            out = dst[z, y]
            mid = src[z, y]
            if axis == 2:
                if nx == 1:
                    out[0] = mid[0]
                    continue
                out[0] = max(mid[0], mid[1])
                for i in range(1, nx - 1):
                    out[i] = max(mid[i - 1], max(mid[i], mid[i + 1]))
                out[nx - 1] = max(mid[nx - 2], mid[nx - 1])
                continue
            if axis == 1:
                up = src[z, min(y + 1, ny - 1)]
                down = src[z, max(y - 1, 0)]
            else:
                up = src[min(z + 1, nz - 1), y]
                down = src[max(z - 1, 0), y]
            for i in range(nx):
                out[i] = max(mid[i], max(up[i], down[i]))


@numba.njit(cache=True, nogil=True)
def _label_peaks(dist, mx, labels):
    """Peaks = (3x3x3 maximum == dist) & (dist > 0); label their 26-connected components, in
    the order of their first voxel (C order), into the padded ``labels`` (one voxel larger on
    every side, zero inside). Returns (rep, where): rep[k] = flat index (in ``dist``) of the
    first voxel of seed k (rep[0] unused); where = flat indices (in ``labels``) of all seed
    voxels, in C order."""
    nz, ny, nx = dist.shape
    flat_d = dist.ravel()
    flat_m = mx.ravel()
    n = 0
    for i in range(flat_d.size):
        if flat_d[i] > 0 and flat_m[i] == flat_d[i]:
            n += 1
    where = np.empty(n, np.int64)
    k = 0
    for i in range(flat_d.size):
        if flat_d[i] > 0 and flat_m[i] == flat_d[i]:
            where[k] = i
            k += 1
    sy, sz = nx, nx * ny
    py, pz = nx + 2, (nx + 2) * (ny + 2)
    lab = labels.ravel()  # labels is contiguous: a view
    for k in range(n):
        i = where[k]
        z = i // sz
        y = (i - z * sz) // sy
        x = i - z * sz - y * sy
        where[k] = (z + 1) * pz + (y + 1) * py + (x + 1)
        lab[where[k]] = k + 1  # provisional: 1 + index into where
    parent = np.arange(n)
    for k in range(n):
        p = where[k]
        # the 13 neighbours that come earlier in C order (the border holds 0 here)
        for dz in range(-1, 1):
            for dy in range(-1, 2):
                for dx in range(-1, 2):
                    if dz == 0 and (dy > 0 or (dy == 0 and dx >= 0)):
                        continue
                    other = lab[p + dz * pz + dy * py + dx]
                    if other <= 0:
                        continue
                    a = find_root(parent, k)
                    b = find_root(parent, other - 1)
                    if a < b:
                        parent[b] = a
                    elif b < a:
                        parent[a] = b
    final = np.zeros(n, np.int32)
    rep = np.zeros(n + 1, np.int64)
    count = 0
    for k in range(n):
        r = find_root(parent, k)
        if r == k:
            count += 1
            final[k] = count
            p = where[k]
            z = p // pz
            y = (p - z * pz) // py
            x = p - z * pz - y * py
            rep[count] = (z - 1) * sz + (y - 1) * sy + (x - 1)
        else:
            final[k] = final[r]
    for k in range(n):
        lab[where[k]] = final[k]
    return rep[: count + 1], where


def seeds_from_distance(
    dist: np.ndarray, labels: np.ndarray, work: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Write the seeds of a (smoothed) distance transform into ``labels``: a C-contiguous int32
    array one voxel larger than ``dist`` on every side (2D: shape (3, Y + 2, X + 2)), zero on
    entry (the border is left for the caller to set). Seeds are the regional maxima over the
    3x3(x3) neighbourhood with edges extended, where dist > 0, grouped 26- (8-) connected and
    numbered by their first voxel. Returns ``rep`` (flat index into ``dist`` of each seed's
    first voxel; ``rep[0]`` unused, ``len(rep) - 1`` seeds) and the flat indices into
    ``labels`` of all seed voxels (C order). ``work``: two scratch arrays like ``dist``."""
    d3 = np.ascontiguousarray(dist[None] if dist.ndim == 2 else dist, dtype=np.float32)
    if not labels.flags.c_contiguous or labels.shape != tuple(s + 2 for s in d3.shape):
        raise ValueError("labels must be C-contiguous and padded by one voxel")
    if work is None:
        a, b = np.empty_like(d3), np.empty_like(d3)
    else:
        a, b = (w.reshape(d3.shape) for w in work)
    _max3(d3, a, 2)
    _max3(a, b, 1)
    _max3(b, a, 0)
    return _label_peaks(d3, a, labels)
