"""Fragment -> segment lookup tables (the segment stage's ``fragment, segment`` Parquet tables):
load one file or a folder of partitions, and apply it to a block of fragment ids.

Fragments missing from the table keep their own id and 0 stays 0, so a table that covers only
the edited segments (or a partial one) still yields a sensible segmentation.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import fastremap
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import InputError
from pipeline.io.fs import filesystem
from pipeline.runner.cache import cached


@dataclass(frozen=True)
class Lut:
    """Sorted fragment ids and the segment of each."""

    fragment: np.ndarray  # uint64, sorted, unique
    segment: np.ndarray  # uint64

    def __len__(self) -> int:
        return len(self.fragment)

    @classmethod
    def from_arrays(cls, fragment: np.ndarray, segment: np.ndarray) -> Lut:
        fragment = np.asarray(fragment, np.uint64)
        segment = np.asarray(segment, np.uint64)
        if fragment.shape != segment.shape:
            raise InputError("a lookup table needs as many segments as fragments")
        order = np.argsort(fragment, kind="stable")
        fragment, segment = fragment[order], segment[order]
        if len(fragment) > 1 and np.any(fragment[1:] == fragment[:-1]):
            dup = fragment[1:][fragment[1:] == fragment[:-1]][0]
            raise InputError(f"the lookup table lists fragment {int(dup)} more than once")
        return cls(fragment, segment)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Segment of each id (ids not in the table map to themselves)."""
        ids = np.asarray(ids, np.uint64)
        if len(self.fragment) == 0:
            return ids.copy()
        idx = np.searchsorted(self.fragment, ids)
        idx = np.minimum(idx, len(self.fragment) - 1)
        found = self.fragment[idx] == ids
        return np.where(found, self.segment[idx], ids)


def _parquet_files(url: str) -> list[str]:
    fs, path = filesystem(url)
    if not fs.exists(path):
        raise InputError(f"no lookup table at {url}; give a .parquet file or a folder of them")
    if fs.isdir(path):
        files = sorted(p for p in fs.find(path) if p.endswith(".parquet"))
        if not files:
            raise InputError(f"{url} holds no .parquet lookup tables")
        prefix = url[: len(url) - len(path)] if url.endswith(path) else ""
        return [prefix + p for p in files]
    return [url]


def load_lut(url: str) -> Lut:
    """Read a ``fragment, segment`` table (one Parquet file or a folder of partitions)."""
    frags, segs = [], []
    for f in _parquet_files(str(url)):
        try:
            t = read_columns(f, ["fragment", "segment"])
        except Exception as e:  # noqa: BLE001 - pyarrow raises many kinds
            raise InputError(
                f"{f} is not a lookup table with columns fragment, segment ({e.__class__.__name__}: {e})"
            ) from None
        frags.append(t["fragment"])
        segs.append(t["segment"])
    return Lut.from_arrays(np.concatenate(frags), np.concatenate(segs))


def load_lut_cached(url: str) -> Lut:
    return cached(f"lut:{url}", lambda: load_lut(url))


def apply_lut(fragments: np.ndarray, lut: Lut) -> np.ndarray:
    """Relabel a block of fragment ids (unique ids first, so the cost is per distinct id)."""
    ids, inverse = fastremap.unique(fragments, return_inverse=True)
    return lut.lookup(ids)[inverse].reshape(fragments.shape)


def read_columns(url: str, columns: list[str]) -> dict[str, np.ndarray]:
    """Some columns of one Parquet file as numpy arrays."""
    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        table = pq.read_table(f, columns=columns)
    return {c: table.column(c).to_numpy() for c in columns}


def lut_bytes(lut: Lut) -> bytes:
    """The table as Parquet bytes (``fragment, segment``, zstd)."""
    buf = io.BytesIO()
    table = pa.table({"fragment": lut.fragment, "segment": lut.segment})
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()
