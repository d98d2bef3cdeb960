"""The SQLite file of the edit log: schema, opening with checks, short write transactions.

One file holds everything but the table contents: ``meta`` (inputs, next free segment id),
``versions`` (one row per lookup-table version, naming its files and their checksums) and
``edits`` (who did what, when and why, which version it read and which it made). Versions are
linear: version ``v`` is made from ``v - 1``, and the head is the highest committed version.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import InputError

SCHEMA_VERSION = "1"
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE versions (
    version INTEGER PRIMARY KEY,
    delta_file TEXT, delta_sha256 TEXT, delta_rows INTEGER NOT NULL,
    full_file TEXT, full_sha256 TEXT,
    created TEXT NOT NULL
);
CREATE TABLE edits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL CHECK (op IN ('merge', 'split', 'undo', 'redo')),
    author TEXT NOT NULL, time TEXT NOT NULL, reason TEXT NOT NULL,
    args TEXT NOT NULL, segments TEXT NOT NULL,
    base_version INTEGER NOT NULL, version INTEGER NOT NULL UNIQUE, target INTEGER
);
"""


class EditLogError(InputError):
    """The edit log file is missing, corrupted, or not a petaseg edit log."""


class EditConflict(InputError):
    """Another edit changed the same segments since this edit read its version."""


def connect(path: Path, create: bool = False) -> sqlite3.Connection:
    """Open (or create) the log; a damaged or foreign file raises ``EditLogError``."""
    if not create and not path.exists():
        raise EditLogError(
            f"no edit log at {path}; create one with `petaseg proofread init {path} --lut ...`"
        )
    if create and path.exists():
        raise EditLogError(f"{path} already exists; open it, or choose another log path")
    try:
        # one connection may serve several threads (a viewer's worker), one at a time
        con = sqlite3.connect(
            str(path), isolation_level=None, timeout=30.0, check_same_thread=False
        )
        con.execute("PRAGMA journal_mode=DELETE")
        con.execute("PRAGMA synchronous=FULL")
        if create:
            con.executescript(SCHEMA)
            return con
        check = con.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(check)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "versions", "edits"} <= tables:
            raise sqlite3.DatabaseError("the meta, versions and edits tables are missing")
        schema = con.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if schema is None or json.loads(schema[0]) != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"unknown schema version {schema and schema[0]}")
        if con.execute("SELECT COUNT(*) FROM versions").fetchone()[0] == 0:
            raise sqlite3.DatabaseError("it records no version")
    except sqlite3.DatabaseError as e:
        raise EditLogError(
            f"{path} is corrupted or not a petaseg edit log ({e}). Restore it from a backup; "
            f"the version files in {versions_folder(path)} are untouched"
        ) from None
    return con


def versions_folder(path: Path) -> Path:
    return path.with_name(path.name + ".versions")


@contextlib.contextmanager
def write_transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` .. ``COMMIT``: one writer at a time; rolled back on any error."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def get_meta(con: sqlite3.Connection) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}


def set_meta(con: sqlite3.Connection, **values: Any) -> None:
    con.executemany(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [(k, json.dumps(v)) for k, v in values.items()],
    )


def head(con: sqlite3.Connection) -> int:
    return int(con.execute("SELECT MAX(version) FROM versions").fetchone()[0])


def edit_rows(con: sqlite3.Connection, since_version: int = -1) -> list[dict[str, Any]]:
    cur = con.execute(
        "SELECT id, op, author, time, reason, args, segments, base_version, version, target "
        "FROM edits WHERE version > ? ORDER BY id",
        (since_version,),
    )
    cols = [c[0] for c in cur.description]
    out = []
    for row in cur:
        d = dict(zip(cols, row, strict=True))
        d["args"], d["segments"] = json.loads(d["args"]), json.loads(d["segments"])
        out.append(d)
    return out
