"""Lookup-table version files of the edit log: written durably, read back verified.

A version is a Parquet file in ``<log>.versions/``. Version 0 (and every ``SNAPSHOT_EVERY``-th
version) is a full table (``fragment, segment``); the others are deltas holding only the rows an
edit changed (``fragment, segment, previous``), so an edit costs the size of the edit, not of the
volume. A file is written to a temporary name, fsynced, renamed to a name no other writer uses,
and the folder fsynced: once the SQLite row that names it is committed, it is complete on disk,
and a crash before that leaves at most an unreferenced file. Each row carries the file's
SHA-256, so a damaged file is detected on read instead of silently yielding a wrong table.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import InputError
from pipeline.lut import Lut

SNAPSHOT_EVERY = 64


class VersionFileError(InputError):
    """A version file is missing or does not match its recorded checksum."""


@dataclass(frozen=True)
class Delta:
    """Rows an edit changed: ``fragment`` now maps to ``segment`` (it mapped to ``previous``)."""

    fragment: np.ndarray
    segment: np.ndarray
    previous: np.ndarray

    def inverse(self) -> Delta:
        return Delta(self.fragment, self.previous, self.segment)

    def __len__(self) -> int:
        return len(self.fragment)


def _parquet_bytes(columns: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(
        pa.table({k: np.asarray(v) for k, v in columns.items()}), buf, compression="zstd"
    )
    return buf.getvalue()


def write_durable(folder: Path, stem: str, data: bytes) -> tuple[str, str]:
    """Write ``data`` to a fresh file in ``folder`` (temp + fsync + rename + fsync of the folder);
    return (file name, sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{stem}-{secrets.token_hex(6)}.parquet"
    tmp = folder / f".{name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / name)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return name, hashlib.sha256(data).hexdigest()


def full_bytes(lut: Lut) -> bytes:
    return _parquet_bytes({"fragment": lut.fragment, "segment": lut.segment})


def delta_bytes(delta: Delta) -> bytes:
    return _parquet_bytes(
        {
            "fragment": np.asarray(delta.fragment, np.uint64),
            "segment": np.asarray(delta.segment, np.uint64),
            "previous": np.asarray(delta.previous, np.uint64),
        }
    )


def _read_verified(folder: Path, name: str, sha256: str) -> dict[str, np.ndarray]:
    path = folder / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise VersionFileError(
            f"version file {path} is missing; the edit log refers to it. Restore the "
            f"{folder.name} folder from a backup (it must sit beside the log)"
        ) from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise VersionFileError(
            f"version file {path} is damaged (its checksum differs from the one in the edit "
            "log); restore it from a backup or export an earlier version"
        )
    table = pq.read_table(io.BytesIO(data))
    return {c: table.column(c).to_numpy() for c in table.column_names}


def read_full(folder: Path, name: str, sha256: str) -> Lut:
    t = _read_verified(folder, name, sha256)
    return Lut.from_arrays(t["fragment"], t["segment"])


def read_delta(folder: Path, name: str, sha256: str) -> Delta:
    t = _read_verified(folder, name, sha256)
    return Delta(
        t["fragment"].astype(np.uint64),
        t["segment"].astype(np.uint64),
        t["previous"].astype(np.uint64),
    )


def apply_delta(lut: Lut, delta: Delta) -> Lut:
    """A new table with the delta's rows set (fragments must already be in the table)."""
    if len(delta) == 0:
        return lut
    idx = np.searchsorted(lut.fragment, delta.fragment)
    segment = lut.segment.copy()
    segment[idx] = delta.segment
    return Lut(lut.fragment, segment)


def orphan_files(folder: Path, referenced: set[str]) -> list[Path]:
    """Version files no committed version names (left by an edit that crashed or lost a race)."""
    if not folder.exists():
        return []
    return sorted(
        p for p in folder.iterdir() if p.name not in referenced and p.name.endswith(".parquet")
    )
