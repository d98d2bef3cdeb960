"""Minimum, maximum and NaN check of a float array in one compiled pass (numpy needs three:
nanmin, nanmax, isnan), for the range checks every block of a boundary map goes through."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _range(flat):
    lo = np.inf
    hi = -np.inf
    nan = False
    for i in range(flat.size):
        v = flat[i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
        if v != v:
            nan = True
    return lo, hi, nan


def value_range(a: np.ndarray) -> tuple[float, float, bool]:
    """(min, max, any NaN) of a float array, NaNs ignored in min and max; (inf, -inf, False)
    when empty or all NaN."""
    lo, hi, nan = _range(np.ascontiguousarray(a).reshape(-1))
    return float(lo), float(hi), bool(nan)
