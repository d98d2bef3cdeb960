"""Proofreading latency in the viewer session (``petaseg proofread view``) on the FIB example output.

The bench first runs the shipped example workflow (``workflows/examples/fib_medulla.yaml``: the
FIB-SEM medulla volume in ``../shared/data``, 160 x 250 x 250 voxels, export off) into a cache
folder (``$PETASEG_BENCH_CACHE`` or ``~/.cache/petaseg/bench_proofread``; a rerun skips the
finished stages); its correction stage leaves an edit log and the ranked candidates. A copy of
that log is opened in a viewer session, and each edit is sent to the session's action handler as a key press would
send it. The latency of an action is measured from the handler's call to the updated view being
ready on the server: the edit committed to the SQLite log, the new table swapped in, the viewer
told to refetch, the edited segment's mesh rebuilt from its fragments' meshes and a 64^3 chunk
around the edit re-read through the new table (what the browser asks for next). Before an edit
the segments it touches are shown once (their meshes made), as a proofreader looks at them
before editing; ``first_mesh_p50_ms`` is what showing a segment the first time costs. The browser's own drawing is
not included (it runs on the user's machine). Merges join the two segments of the top-ranked
split-error candidates, splits cut the top-ranked merge-error candidates between their source and
sink fragments, undos revert them; ``candidates_per_minute`` is a scripted review (next candidate,
then its proposed edit) over the ranked list.

Anchor: CAVE/PyChunkedGraph serve such edits from a server cluster; here one 2-core laptop does it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from pipeline.errors import InputError
from pipeline.geometry import Roi
from pipeline.proofread.segview import segment_box

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / "workflows" / "examples" / "fib_medulla.yaml"
N_EDITS = 15


def log(msg: str) -> None:
    print(f"[bench proofread] {msg}", flush=True)


def cache_folder() -> Path:
    default = Path.home() / ".cache" / "petaseg" / "bench_proofread"
    return Path(os.environ.get("PETASEG_BENCH_CACHE") or default)


def correct_threshold() -> float:
    """The merge threshold whose segmentation the example workflow corrects."""
    import yaml

    return float(yaml.safe_load(WORKFLOW.read_text())["stages"]["correct"]["threshold"])


def prepare(folder: Path) -> dict:
    """Run the shipped FIB workflow (export off) into ``folder``; return its summary."""
    from workflows.api import run_workflow

    folder.mkdir(parents=True, exist_ok=True)
    overrides = {
        "output": str(folder / "fib_medulla.zarr"),
        "input.raw": str(REPO.parent / "shared/data/fib_medulla_flyem/fib_medulla_train.h5")
        + "/volumes/raw",
        "stages.export.enabled": False,
        "stages.segment.thresholds": [correct_threshold()],
        "cluster": {"kind": "local"},
    }
    return run_workflow(str(WORKFLOW), progress=False, overrides=overrides)


def _state(segments=(), sources=(), sinks=()):
    from pipeline.proofread.session import SEG, SINKS, SOURCES

    def points(ps):
        return SimpleNamespace(annotations=[SimpleNamespace(point=p) for p in ps])

    layers = {SEG: SimpleNamespace(segments=list(segments))}
    layers[SOURCES], layers[SINKS] = points(sources), points(sinks)
    return SimpleNamespace(viewer_state=SimpleNamespace(layers=layers))


def _view_ready(session, segment: int, point_xyz) -> None:
    """What the viewer asks for after an edit: the segment's mesh and a chunk at the edit."""
    session.volume.get_object_mesh(segment)
    shape = np.asarray(session.fragments.shape)
    centre = np.asarray([point_xyz[2], point_xyz[1], point_xyz[0]], int) - np.asarray(
        session.volume.voxel_offset
    )
    start = np.clip(centre - 32, 0, np.maximum(shape - 64, 0))
    end = np.minimum(start + 64, shape)
    session.volume.get_encoded_subvolume("npz", start, end, "1,1,1")


def _seen(session, first_ms: list[float], *segments: int) -> None:
    """The proofreader looks at the segments before editing them: their meshes are shown (and
    their fragments' meshes kept), as in the viewer; ``first_ms`` gets each one's time."""
    for s in segments:
        first_ms.append(_timed(session.volume.get_object_mesh, int(s)))


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t0) * 1e3


def _xyz_of_fragment(session, frag: int) -> list[float]:
    """A voxel centre (x, y, z voxels, viewer order) inside a fragment."""
    vol = session.fragments
    begin, end = segment_box(np.array([frag], np.uint64), vol)
    vs = vol.voxel_size
    roi = Roi(
        tuple(o + b * v for o, b, v in zip(vol.offset, begin, vs, strict=True)),
        tuple((e - b) * v for b, e, v in zip(begin, end, vs, strict=True)),
    )
    z, y, x = np.argwhere(vol.read(roi) == frag)[0] + np.asarray(begin)
    off = np.asarray(vol.offset) / np.asarray(vs)
    return [x + off[2] + 0.5, y + off[1] + 0.5, z + off[0] + 0.5]


def merges_and_undos(session, candidates, first_ms) -> tuple[list[float], list[float]]:
    merge_ms, undo_ms = [], []
    pairs = [c for c in candidates if c["error"] == "split_error"][:N_EDITS]
    for c in pairs:
        a, b = (
            int(s)
            for s in session.array.lut.lookup(np.asarray(c["proposal"]["fragments"], np.uint64))
        )
        if a == b:
            continue
        xyz = _xyz_of_fragment(session, int(c["proposal"]["fragments"][0]))
        _seen(session, first_ms, a, b)
        t0 = time.perf_counter()
        session._merge(_state([a, b]))
        _view_ready(session, min(a, b), xyz)
        merge_ms.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        session._undo(_state())
        _view_ready(session, a, xyz)
        undo_ms.append((time.perf_counter() - t0) * 1e3)
    return merge_ms, undo_ms


def splits(session, candidates, first_ms) -> list[float]:
    out = []
    for c in [c for c in candidates if c["error"] == "merge_error"][:N_EDITS]:
        p = c["proposal"]
        src = _xyz_of_fragment(session, int(p["source_fragment"]))
        snk = _xyz_of_fragment(session, int(p["sink_fragment"]))
        seg = int(session.array.lut.lookup(np.array([p["source_fragment"]], np.uint64))[0])
        _seen(session, first_ms, seg)
        t0 = time.perf_counter()
        try:
            session._split(_state([seg], [src], [snk]))
        except Exception as e:  # noqa: BLE001 - a candidate may no longer apply
            log(f"split of {seg} skipped: {e}")
            continue
        _view_ready(session, seg, src)
        out.append((time.perf_counter() - t0) * 1e3)
        session._undo(_state())
    return out


def review(session, candidates, seconds: float = 30.0) -> float:
    """Candidates per minute: the next candidate, then its proposed edit (a merge for a split
    error, a split between its source and sink fragments for a merge error) until the view is
    updated, for ``seconds``."""
    from pipeline.proofread.review import CandidateQueue

    session.queue = CandidateQueue(candidates)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        cand = session.queue.next(session.array.lut)
        if cand is None:
            break
        raw = session.queue.candidates[session.queue.index - 1]
        try:
            _proposed_edit(session, cand, raw["proposal"])
        except InputError as e:  # e.g. a segment merged away by an earlier candidate
            log(f"candidate {cand.rank} left: {e}")
        done += 1
    return done / (time.perf_counter() - t0) * 60.0


def _proposed_edit(session, cand, proposal: dict) -> None:
    if cand.error == "split_error" and len(cand.segments) == 2:
        session._merge(_state(cand.segments))
        xyz = _xyz_of_fragment(session, int(proposal["fragments"][0]))
        _view_ready(session, min(cand.segments), xyz)
    elif cand.error == "merge_error":
        src = _xyz_of_fragment(session, int(proposal["source_fragment"]))
        snk = _xyz_of_fragment(session, int(proposal["sink_fragment"]))
        session._split(_state(cand.segments, [src], [snk]))
        _view_ready(session, cand.segments[0], src)


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def main(json_out: bool = False) -> dict:
    from pipeline.proofread.review import read_candidates
    from pipeline.proofread.session import ProofreadSession

    t0 = time.perf_counter()
    prepare(cache_folder())
    prep_s = time.perf_counter() - t0
    edit_log, cands = _find_outputs(cache_folder())
    log(f"FIB workflow ready in {prep_s:.0f} s; log {edit_log}")
    candidates = read_candidates(cands)["candidates"]
    with tempfile.TemporaryDirectory(prefix="petaseg-bench-proofread-") as tmp:
        copy = Path(tmp) / edit_log.name  # the edits of the bench go to a copy of the log
        shutil.copy2(edit_log, copy)
        versions = edit_log.with_name(edit_log.name + ".versions")
        shutil.copytree(versions, copy.with_name(copy.name + ".versions"))
        with ProofreadSession(copy, author="bench") as session:
            first_ms: list[float] = []
            merge_ms, undo_ms = merges_and_undos(session, candidates, first_ms)
            split_ms = splits(session, candidates, first_ms)
            per_minute = review(session, candidates)
            head = session.log.head
    return {
        "data": "fib_medulla_train (160x250x250, 10 nm), shipped fib_medulla workflow, "
        f"t={correct_threshold()}",
        "workflow_s": round(prep_s, 1),  # 0-ish when the cache holds the finished run
        "candidates": len(candidates),
        "merges": len(merge_ms),
        "splits": len(split_ms),
        "merge_p50_ms": pct(merge_ms, 50),
        "merge_p95_ms": pct(merge_ms, 95),
        "split_p50_ms": pct(split_ms, 50),
        "split_p95_ms": pct(split_ms, 95),
        "undo_p50_ms": pct(undo_ms, 50),
        "undo_p95_ms": pct(undo_ms, 95),
        "candidates_per_minute": round(per_minute, 1),
        "first_mesh_p50_ms": pct(first_ms, 50),
        "first_mesh_p95_ms": pct(first_ms, 95),
        "log_versions": head,
        "measured": "action handler call -> edit committed, table swapped, mesh + 64^3 chunk "
        "re-served (server side; browser drawing excluded)",
    }


def _find_outputs(tmp: Path) -> tuple[Path, Path]:
    logs = sorted(tmp.rglob("*.sqlite"))
    cands = sorted(tmp.rglob("candidates.json"))
    if not logs or not cands:
        raise RuntimeError(f"the FIB workflow left no edit log / candidates under {tmp}")
    return logs[0], cands[0]


if __name__ == "__main__":
    import json

    print(json.dumps(main(json_out=True)))
