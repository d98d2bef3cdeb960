"""Proofreading: a durable, versioned edit log of merges and splits over a lookup table.

``EditLog`` keeps one SQLite file (``editlog_store``) and a folder of lookup-table versions
beside it (``editlog_versions``). Every edit
1. reads the head version and computes the rows it changes (a merge: the fragments of one
   segment move to the other; a split: a minimum cut of the segment's fragment graph between
   the fragments under the source points and those under the sink points, see
   ``editlog_graph``),
2. writes that delta as a new version file, durably, under a fresh name,
3. and only then commits one SQLite transaction that records the version and the edit.
A crash between 2 and 3 leaves an unreferenced file and the previous head intact.

Concurrency is optimistic: step 3 checks that no edit committed since the version read in step
1 touched the same segments (a disjoint edit is simply rebased onto the new head); otherwise the
later edit fails with ``EditConflict`` and nothing is recorded. Undo and redo are edits too: they
write the inverse (or the original) delta of an earlier edit as a new version, so versions only
ever grow and any version can be exported.
"""

from __future__ import annotations

import datetime
import getpass
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.geometry import Roi
from pipeline.io.tables import lut_table, read_json, table_exists, write_json, write_table
from pipeline.io.urls import refuse_overwriting
from pipeline.io.volume import open_volume
from pipeline.lut import Lut, load_lut
from pipeline.proofread.graph import min_cut, segment_edges
from pipeline.proofread.store import (
    SCHEMA_VERSION,
    EditConflict,
    connect,
    edit_rows,
    get_meta,
    head,
    set_meta,
    versions_folder,
    write_transaction,
)
from pipeline.proofread.versions import (
    SNAPSHOT_EVERY,
    Delta,
    apply_delta,
    delta_bytes,
    full_bytes,
    read_delta,
    read_full,
    write_durable,
)
from pipeline.seg.ids import id_blocks

__all__ = ["EditLog", "EditConflict", "EditResult"]


@dataclass(frozen=True)
class EditResult:
    edit_id: int
    op: str
    version: int
    segments: list[int]  # segments the edit touched (before and after)
    rows: int  # lookup-table rows it changed


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def _author(author: str | None) -> str:
    if author:
        return author
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


def _infer_graph(lut_url: str) -> str | None:
    """``<root>/luts/<t>`` (the segment stage's layout) -> ``<root>`` when it has a graph."""
    parts = str(lut_url).rstrip("/").rsplit("/", 2)
    if len(parts) == 3 and parts[1] == "luts" and table_exists(f"{parts[0]}/graph/meta.json"):
        return parts[0]
    return None


def segment_id(value: Any, what: str) -> int:
    """A segment id as given by a user: an integer in [1, 2^64) (ids are uint64; 0 is
    background), or a clear error naming it."""
    try:
        sid = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{what}: {value!r} is not a segment id (a whole number)") from None
    if sid == 0:
        raise InputError(f"{what}: segment 0 is background; name a segment id from 1 to 2^64-1")
    if not 0 < sid < 2**64:
        raise InputError(
            f"{what}: {sid} is not a segment id: ids are uint64 from 1 to 2^64-1 (0 is background)"
        )
    return sid


class EditLog:
    """An open edit log. Safe to use from several processes at once (one SQLite file)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.folder = versions_folder(self.path)
        self.con = connect(self.path)
        self.meta = get_meta(self.con)
        self._cache: tuple[int, Lut] | None = None
        self._fragments_volume = None

    # --- creation ----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        lut: str | Lut,
        fragments: str | None = None,
        graph: str | None = None,
        author: str | None = None,
    ) -> EditLog:
        """Start a log whose version 0 is a copy of ``lut`` (a table URL or a ``Lut``).

        ``fragments`` (the fragments volume URL) is needed to place split points; ``graph`` (the
        tables root holding ``graph/edges``) to split; both are found from the segment stage's
        layout when ``lut`` is ``<root>/luts/<threshold>``."""
        path = Path(path)
        if isinstance(lut, str):
            graph = graph or _infer_graph(lut)
            if fragments is None and graph is not None:
                fragments = read_json(f"{graph}/graph/meta.json").get("fragments")
            source = lut
            lut = load_lut(lut)
        else:
            source = "in-memory table"
        if len(lut) == 0:
            raise InputError(f"the lookup table {source} is empty; nothing to proofread")
        if np.any(lut.fragment == 0):
            raise InputError(f"the lookup table {source} maps fragment 0 (background)")
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = versions_folder(path)
        name, sha = write_durable(folder, "v0-full", full_bytes(lut))
        con = connect(path, create=True)
        try:
            with write_transaction(con):
                set_meta(
                    con,
                    schema=SCHEMA_VERSION,
                    base_lut=source,
                    fragments=fragments,
                    graph=graph,
                    next_id=int(max(lut.segment.max(), lut.fragment.max())) + 1,
                    created=_now(),
                    created_by=_author(author),
                )
                con.execute(
                    "INSERT INTO versions (version, delta_file, delta_sha256, delta_rows, "
                    "full_file, full_sha256, created) VALUES (0, NULL, NULL, 0, ?, ?, ?)",
                    (name, sha, _now()),
                )
        finally:
            con.close()
        return cls(path)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> EditLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- reading -----------------------------------------------------------------------------
    @property
    def head(self) -> int:
        return head(self.con)

    def lut(self, version: int | None = None) -> Lut:
        """The lookup table of ``version`` (default: the head), checked against its checksums."""
        top = self.head
        version = top if version is None else int(version)
        if not 0 <= version <= top:
            raise InputError(f"version {version} does not exist in {self.path} (0..{top})")
        if self._cache and self._cache[0] == version:
            return self._cache[1]
        start = self.con.execute(
            "SELECT version, full_file, full_sha256 FROM versions "
            "WHERE version <= ? AND full_file IS NOT NULL ORDER BY version DESC LIMIT 1",
            (version,),
        ).fetchone()
        base_v, lut = start[0], read_full(self.folder, start[1], start[2])
        if self._cache and base_v <= self._cache[0] <= version:
            base_v, lut = self._cache
        rows = self.con.execute(
            "SELECT delta_file, delta_sha256 FROM versions WHERE version > ? AND version <= ? "
            "ORDER BY version",
            (base_v, version),
        ).fetchall()
        for name, sha in rows:
            lut = apply_delta(lut, read_delta(self.folder, name, sha))
        self._cache = (version, lut)
        return lut

    def fragments_of(self, segment: int, version: int | None = None) -> np.ndarray:
        lut = self.lut(version)
        return lut.fragment[lut.segment == np.uint64(segment_id(segment, "segment"))]

    def segments(self, version: int | None = None) -> np.ndarray:
        return np.unique(self.lut(version).segment)

    def segment_at(self, point_nm: Sequence[float], version: int | None = None) -> int:
        """The segment under a point (z, y, x nm) at ``version`` (default: the head)."""
        version = self.head if version is None else int(version)
        frag = self._fragment_at(point_nm, "point")
        if frag == 0:
            raise InputError(
                f"the point {list(point_nm)} nm lies in background (fragment 0); place it "
                "inside a segment"
            )
        return int(self.lut(version).lookup(np.array([frag], np.uint64))[0])

    def log(self) -> list[dict[str, Any]]:
        """Every edit, oldest first (id, op, author, time, reason, args, segments, versions)."""
        return edit_rows(self.con)

    # --- edits -------------------------------------------------------------------------------
    def merge(
        self,
        a: int,
        b: int,
        author: str | None = None,
        reason: str = "",
        expect_version: int | None = None,
    ) -> EditResult:
        """Join segments ``a`` and ``b``; the result keeps the smaller id."""
        a, b = segment_id(a, "merge"), segment_id(b, "merge")
        base = self._base(expect_version)
        if a == b:
            raise InputError(f"merge: {a} and {b} are the same segment; name two segments")
        fa, fb = self._known(a, base), self._known(b, base)
        keep, drop = min(a, b), max(a, b)
        moved = fb if drop == b else fa
        delta = Delta(
            moved, np.full(len(moved), keep, np.uint64), np.full(len(moved), drop, np.uint64)
        )
        args = {"a": a, "b": b, "result": keep, "fragments_moved": int(len(moved))}
        return self._commit("merge", delta, base, [keep, drop], args, author, reason)

    def split(
        self,
        segment: int,
        sources: Sequence[Sequence[float]],
        sinks: Sequence[Sequence[float]],
        author: str | None = None,
        reason: str = "",
        expect_version: int | None = None,
    ) -> EditResult:
        """Cut ``segment`` between the source and sink points (nm, z y x) by a minimum cut of its
        fragment graph; the sink side becomes a new segment."""
        segment = segment_id(segment, "split")
        base = self._base(expect_version)
        frags = self._known(segment, base)
        if not sources or not sinks:
            raise InputError("split: give at least one source point and one sink point")
        src = self._fragments_at(sources, segment, base, "source")
        snk = self._fragments_at(sinks, segment, base, "sink")
        both = set(src) & set(snk)
        if both:
            raise InputError(
                f"split: source and sink points fall in the same fragment {sorted(both)[0]}; "
                "a split cannot cut inside a fragment, so pick points farther apart"
            )
        if not self.meta.get("graph"):
            raise InputError(
                f"split: {self.path} knows no region graph; recreate the log with --graph"
            )
        edges = segment_edges(self.meta["graph"], frags)
        mask, cut = min_cut(frags, edges, src, snk)
        args = {
            "sources": [list(map(float, p)) for p in sources],
            "sinks": [list(map(float, p)) for p in sinks],
            "cut_value": cut,
        }
        return self.split_fragments(segment, frags[mask], author, reason, base, args)

    def split_fragments(
        self,
        segment: int,
        moved: Sequence[int] | np.ndarray,
        author: str | None = None,
        reason: str = "",
        expect_version: int | None = None,
        args: dict[str, Any] | None = None,
    ) -> EditResult:
        """Move the fragments ``moved`` of ``segment`` to a new segment (a split whose cut was
        decided elsewhere, e.g. by the correction stage)."""
        segment = segment_id(segment, "split")
        base = self._base(expect_version)
        frags = self._known(segment, base)
        moved = np.unique(np.asarray(moved, np.uint64))
        outside = moved[~np.isin(moved, frags)]
        if len(outside):
            raise InputError(
                f"split: fragment {int(outside[0])} is not in segment {segment} at version {base}"
            )
        if len(moved) == 0 or len(moved) == len(frags):
            raise InputError(
                f"split: segment {segment} would not be split (the cut leaves all its "
                f"{len(frags)} fragments on one side); place the points on the two parts"
            )
        new_id = self._reserve_id()
        delta = Delta(
            moved,
            np.full(len(moved), new_id, np.uint64),
            np.full(len(moved), segment, np.uint64),
        )
        args = {
            "segment": segment,
            **(args or {}),
            "new_segment": new_id,
            "fragments_moved": int(len(moved)),
            "fragments_kept": int(len(frags) - len(moved)),
        }
        return self._commit("split", delta, base, [segment, new_id], args, author, reason)

    def undo(self, author: str | None = None, reason: str = "") -> EditResult:
        """Revert the latest edit that is in effect (merge, split or redo)."""
        base, target = self.head, self._target_of("undo")
        delta = self._edit_delta(target).inverse()
        return self._replay("undo", target, delta, base, author, reason)

    def redo(self, author: str | None = None, reason: str = "") -> EditResult:
        """Re-apply the latest undone edit (only until a new merge or split is made)."""
        base, target = self.head, self._target_of("redo")
        return self._replay("redo", target, self._edit_delta(target), base, author, reason)

    def export(self, out: str, version: int | None = None) -> dict[str, Any]:
        """Write a version as a lookup table in the segment stage's layout (``<out>/*.parquet`` +
        ``meta.json``), which ``petaseg relabel`` and ``petaseg export --lut`` read."""
        version = self.head if version is None else int(version)
        mine = [str(self.path), str(versions_folder(self.path))]
        sources = [*mine, self.meta.get("base_lut"), self.meta.get("fragments")]
        refuse_overwriting([out], sources, "proofread export")
        lut = self.lut(version)
        scheme = None
        if self.meta.get("fragments"):
            scheme = open_volume(self.meta["fragments"]).attrs.get("petaseg_fragments") or None
        if scheme:
            part = id_blocks(lut.fragment, scheme["shape"], scheme["block_shape"])
            for p in np.unique(part).tolist():
                pick = part == p
                write_table(
                    lut_table(out, p),
                    {"fragment": lut.fragment[pick], "segment": lut.segment[pick]},
                )
        else:
            write_table(lut_table(out, "all"), {"fragment": lut.fragment, "segment": lut.segment})
        info = {
            "version": version,
            "edit_log": str(self.path),
            "digest": hashlib.sha256(lut.fragment.tobytes() + lut.segment.tobytes()).hexdigest()[
                :16
            ],
            "fragments": int(len(lut)),
            "segments": int(len(np.unique(lut.segment))),
            "partitioned": bool(scheme),
            "scheme": scheme,
        }
        write_json(f"{out}/meta.json", info)
        return info

    # --- internals ---------------------------------------------------------------------------
    def _base(self, expect_version: int | None) -> int:
        top = self.head
        if expect_version is None:
            return top
        if not 0 <= int(expect_version) <= top:
            raise InputError(f"--expect-version {expect_version}: the log has versions 0..{top}")
        return int(expect_version)

    def _known(self, segment: int, version: int) -> np.ndarray:
        if segment == 0:
            raise InputError("segment 0 is background; name a labelled segment")
        frags = self.fragments_of(segment, version)
        if len(frags) == 0:
            raise InputError(
                f"unknown segment id {segment}: it is not in version {version} of {self.path} "
                "(it may have been merged away or never existed); check `petaseg proofread log`"
            )
        return frags

    def _fragment_at(self, p: Sequence[float], what: str) -> int:
        """The fragment id under a point (z, y, x nm) of the log's fragments volume."""
        url = self.meta.get("fragments")
        if not url:
            raise InputError(
                f"split: {self.path} does not know the fragments volume; recreate the log with "
                "--fragments so points can be placed"
            )
        if len(p) != 3:
            raise InputError(f"split: {what} point {list(p)} needs three coordinates z, y, x (nm)")
        vol = self._fragments_volume or open_volume(url)
        self._fragments_volume = vol
        vox = [
            int(np.floor((c - o) / v))
            for c, o, v in zip(p, vol.offset, vol.voxel_size, strict=True)
        ]
        roi = Roi(
            tuple(o + x * v for o, x, v in zip(vol.offset, vox, vol.voxel_size, strict=True)),
            vol.voxel_size,
        )
        if not vol.roi.contains(roi):
            raise InputError(f"split: {what} point {list(p)} nm lies outside the volume {vol.roi}")
        return int(vol.read(roi).ravel()[0])

    def _fragments_at(self, points, segment: int, version: int, what: str) -> list[int]:
        lut = self.lut(version)
        out = []
        for p in points:
            frag = self._fragment_at(p, what)
            if frag == 0:
                raise InputError(
                    f"split: {what} point {list(p)} nm lies in background (fragment 0), not in "
                    f"segment {segment}; place it inside the segment"
                )
            seg = int(lut.lookup(np.array([frag], np.uint64))[0])
            if seg != segment:
                raise InputError(
                    f"split: {what} point {list(p)} nm lies in segment {seg}, not in segment "
                    f"{segment}; place every point inside the segment being split"
                )
            out.append(frag)
        return out

    def _reserve_id(self) -> int:
        """A segment id nobody else will get (reserved in its own short transaction)."""
        with write_transaction(self.con):
            nid = int(get_meta(self.con)["next_id"])
            set_meta(self.con, next_id=nid + 1)
        return nid

    def _stacks(self) -> tuple[list[dict], list[dict]]:
        """(edits in effect, undone edits) by replaying the log: undo pops the first onto the
        second, redo pops it back, a new merge or split clears the second."""
        by_id: dict[int, dict] = {}
        done: list[dict] = []
        undone: list[dict] = []
        for e in self.log():
            by_id[e["id"]] = e
            if e["op"] in ("merge", "split"):
                done.append(e)
                undone.clear()
            elif e["op"] == "undo":
                undone.append(done.pop())
            elif e["op"] == "redo":
                done.append(undone.pop())
        return done, undone

    def _edit_delta(self, edit: dict) -> Delta:
        row = self.con.execute(
            "SELECT delta_file, delta_sha256 FROM versions WHERE version = ?", (edit["version"],)
        ).fetchone()
        return read_delta(self.folder, row[0], row[1])

    def _target_of(self, op: str) -> dict[str, Any]:
        """The edit an undo reverts (the latest in effect) or a redo re-applies (the latest
        undone)."""
        done, undone = self._stacks()
        stack = done if op == "undo" else undone
        if not stack:
            raise InputError(f"{op}: nothing to {op} in {self.path}")
        return stack[-1]

    def _replay(
        self,
        op: str,
        target: dict[str, Any],
        delta: Delta,
        base: int,
        author: str | None,
        reason: str,
    ) -> EditResult:
        """Commit ``delta`` (an earlier edit's, or its inverse) as the edit ``op`` on it."""
        args = {"target_edit": target["id"], "target_op": target["op"]}
        return self._commit(op, delta, base, target["segments"], args, author, reason, target["id"])

    def _commit(
        self,
        op: str,
        delta: Delta,
        base: int,
        segments: list[int],
        args: dict[str, Any],
        author: str | None,
        reason: str,
        target: int | None = None,
    ) -> EditResult:
        # 1. the version file, complete on disk before anything refers to it
        name, sha = write_durable(self.folder, f"v{base + 1}-{op}", delta_bytes(delta))
        # 2. one transaction: check for conflicting edits, then record version and edit
        with write_transaction(self.con):
            top = head(self.con)
            if top != base:
                self._check_conflicts(base, set(segments), op)
            version = top + 1
            full_name = full_sha = None
            if version % SNAPSHOT_EVERY == 0:
                full_name, full_sha = self._snapshot(top, delta, version)
            self._record(version, name, sha, len(delta), full_name, full_sha)
            cur = self.con.execute(
                "INSERT INTO edits (op, author, time, reason, args, segments, base_version, "
                "version, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    op,
                    _author(author),
                    _now(),
                    reason,
                    json.dumps(args),
                    json.dumps([int(s) for s in segments]),
                    base,
                    version,
                    target,
                ),
            )
            edit_id = int(cur.lastrowid)
        return EditResult(edit_id, op, version, [int(s) for s in segments], len(delta))

    def _record(self, version, name, sha, rows, full_name, full_sha) -> None:
        self.con.execute(
            "INSERT INTO versions (version, delta_file, delta_sha256, delta_rows, full_file, "
            "full_sha256, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (version, name, sha, rows, full_name, full_sha, _now()),
        )

    def _check_conflicts(self, base: int, segments: set[int], op: str) -> None:
        for e in edit_rows(self.con, since_version=base):
            shared = segments & set(e["segments"])
            if shared:
                raise EditConflict(
                    f"{op} conflicts with edit #{e['id']} ({e['op']} by {e['author']} at "
                    f"{e['time']}), which changed segment {sorted(shared)[0]} after version "
                    f"{base} that this {op} was computed from; nothing was recorded. Reload "
                    "the head version and redo the edit if it still applies"
                )

    def _snapshot(self, top: int, delta: Delta, version: int) -> tuple[str, str]:
        lut = apply_delta(self.lut(top), delta)
        return write_durable(self.folder, f"v{version}-full", full_bytes(lut))
