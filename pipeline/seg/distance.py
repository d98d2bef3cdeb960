"""Euclidean distance transform of a mask (compiled with numba), the same values as
``edt.edt(mask, anisotropy, black_border=False)`` to float32 rounding: the distance of every
voxel of ``mask`` to the nearest voxel outside it, in the units of ``anisotropy`` (the array's
edge is not "outside": a mask without any outside voxel is infinitely far away).

Separable (Felzenszwalb and Huttenlocher): a linear scan along x, then the lower envelope of
parabolas along y and along z, one column at a time through a small buffer. Written here rather
than calling edt because it costs about a third of edt's time on segmentation blocks (it skips
columns that are all outside or all unreachable, and keeps the squared distances in float32).
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _rows(mask, w2, out):
    """Squared distance along x to the nearest False of the row (inf when none)."""
    nz, ny, nx = mask.shape
    inf = np.float32(np.inf)
    for z in range(nz):
        for y in range(ny):
            m = mask[z, y]
            o = out[z, y]
            prev = -1
            for i in range(nx):
                if not m[i]:
                    prev = i
                    o[i] = 0.0
                elif prev >= 0:
                    o[i] = np.float32(w2 * (i - prev) * (i - prev))
                else:
                    o[i] = inf
            if prev < 0:
                continue  # no outside voxel in the row: all inf
            nxt = -1
            for i in range(nx - 1, -1, -1):
                if not m[i]:
                    nxt = i
                elif nxt >= 0:
                    d = np.float32(w2 * (nxt - i) * (nxt - i))
                    if d < o[i]:
                        o[i] = d


@numba.njit(cache=True, nogil=True, inline="always")
def _envelope(f, n, w2, v, zn, zd, out):
    """Lower envelope of the parabolas w2 (q - p)^2 + f[p] (f = inf: no parabola); writes its
    value at every q into ``out``. Returns False when f is all inf. The boundary between
    parabolas k - 1 and k is the fraction zn[k] / zd[k] (zd > 0), compared without dividing.
    Zeros inside a run of zeros are skipped: the run's two ends dominate them elsewhere."""
    k = -1
    for q in range(n):
        fq = f[q]
        if fq == np.inf:
            continue
        if fq == 0.0 and 0 < q < n - 1 and f[q - 1] == 0.0 and f[q + 1] == 0.0:
            continue
        if k < 0:
            k = 0
            v[0] = q
            zn[0] = -1.0  # -inf
            zd[0] = 0.0
            continue
        p = v[k]
        num = (fq + w2 * q * q) - (f[p] + w2 * p * p)
        den = 2.0 * w2 * (q - p)
        while num * zd[k] <= zn[k] * den:  # the new parabola hides parabola k
            k -= 1
            p = v[k]
            num = (fq + w2 * q * q) - (f[p] + w2 * p * p)
            den = 2.0 * w2 * (q - p)
        k += 1
        v[k] = q
        zn[k] = num
        zd[k] = den
    if k < 0:
        return False
    j = 0
    for q in range(n):
        if f[q] == 0.0:
            out[q] = 0.0
            continue
        while j < k and zn[j + 1] < q * zd[j + 1]:
            j += 1
        p = v[j]
        out[q] = w2 * (q - p) * (q - p) + f[p]
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _lines(buf, n, w2, v, zn, zd, res):
    """Envelope of every row of ``buf`` (rows of length n), in place; all-zero rows skipped."""
    for r in range(buf.shape[0]):
        f = buf[r]
        zero = True
        for q in range(n):
            if f[q] != 0.0:
                zero = False
                break
        if zero:
            continue
        if _envelope(f, n, w2, v, zn, zd, res):
            for q in range(n):
                f[q] = res[q]


@numba.njit(cache=True, nogil=True)
def _columns(d, w2, axis):
    """Envelopes along y (``axis`` 1: one z-plane at a time) or z (``axis`` 0: one y-row of
    every plane at a time), the lines transposed into a buffer (contiguous rows)."""
    nz, ny, nx = d.shape
    n = ny if axis == 1 else nz  # the length of a line
    outer = nz if axis == 1 else ny
    buf = np.empty((nx, n), np.float64)
    res = np.empty(n, np.float64)
    v = np.empty(n, np.int64)
    zn = np.empty(n, np.float64)
    zd = np.empty(n, np.float64)
    for o in range(outer):
        for i in range(n):
            row = d[o, i] if axis == 1 else d[i, o]
            for x in range(nx):
                buf[x, i] = row[x]
        _lines(buf, n, w2, v, zn, zd, res)
        for i in range(n):
            row = d[o, i] if axis == 1 else d[i, o]
            for x in range(nx):
                row[x] = buf[x, i]


@numba.njit(cache=True, nogil=True)
def _sqrt(d):
    flat = d.ravel()
    for i in range(flat.size):
        flat[i] = np.sqrt(flat[i])


def distance_transform(
    mask: np.ndarray, anisotropy: Sequence[float], out: np.ndarray | None = None
) -> np.ndarray:
    """float32 Euclidean distance of each True voxel of a 2D or 3D mask to the nearest False
    one (0 on False voxels, inf where no False voxel exists); into ``out`` (C-contiguous
    float32 of the mask's shape) when given."""
    m = np.ascontiguousarray(mask, dtype=np.bool_)
    m3 = m[None] if m.ndim == 2 else m
    w = [1.0] * (3 - m.ndim) + [float(a) for a in anisotropy]
    if out is None:
        out = np.empty(m.shape, np.float32)
    elif out.shape != m.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous float32 array of the mask's shape")
    out3 = out[None] if m.ndim == 2 else out
    _rows(m3, w[2] * w[2], out3)
    if m3.shape[1] > 1:
        _columns(out3, w[1] * w[1], 1)
    if m3.shape[0] > 1:
        _columns(out3, w[0] * w[0], 0)
    _sqrt(out3)
    return out
