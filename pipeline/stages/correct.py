"""Correct stage: find merge and split errors in a segmentation (fragments + lookup table),
apply the confident corrections as edits in the proofreading edit log, and rank the rest for a
person (a JSON list, shown by ``petaseg export --candidates`` as a point annotation layer).

1. ``run_features`` (blockwise, resumable): raw-image and shape statistics per fragment and
   contact, beside the region graph.
2. Candidates on tables: every pair of touching segments (split errors), and one proposed
   min-cut split per multi-fragment segment (merge errors); see ``correct_pairs`` and
   ``correct_splits``.
3. The classifiers (``correct_model``) give each candidate a probability of being an error.
4. Auto-correction (``correct_apply.auto_correct``): the splits at or above the model's split
   threshold, then rounds of re-scored merges at or above its pair threshold. Each action is
   recorded through ``proofread.EditLog`` (author ``petaseg-correct``, the probability in the
   reason), so every automatic change is a logged, undoable version.
5. The candidates of the corrected segmentation, most probable error first, go to the
   candidates JSON for proofreaders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client

from pipeline.correct.apply import Action, auto_correct
from pipeline.correct.classifier import ErrorModel
from pipeline.correct.features import run_features
from pipeline.correct.tables import Tables
from pipeline.correct.train import detect
from pipeline.errors import InputError
from pipeline.io.urls import refuse_overwriting
from pipeline.lut import Lut
from pipeline.proofread.editlog import EditLog

AUTHOR = "petaseg-correct"


def _point_nm(voxel, tables: Tables) -> list[float]:
    return [
        float(o + (int(v) + 0.5) * s)
        for v, o, s in zip(voxel, tables.offset, tables.voxel_size, strict=True)
    ]


def open_or_create_log(log_path: str, lut: str | Lut | None, fragments: str, root: str) -> EditLog:
    """The edit log to correct: an existing one (its head is the segmentation), or a new one
    started from ``lut``."""
    if Path(log_path).exists():
        return EditLog(log_path)
    if lut is None:
        raise InputError(f"no edit log at {log_path}; give the lookup table to start it (--lut)")
    return EditLog.create(log_path, lut, fragments, root)


def run_correct(
    root: str,
    fragments_url: str,
    raw_url: str,
    boundary_url: str,
    model: str | ErrorModel,
    log_path: str,
    candidates_json: str,
    lut: str | Lut | None = None,
    thresholds: dict[str, float] | None = None,
    max_candidates: int = 10000,
    client: Client | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Detect, auto-correct and rank errors; returns a summary (what was applied, where)."""
    sources = [
        root,
        fragments_url,
        raw_url,
        boundary_url,
        model if isinstance(model, str) else None,
    ]
    refuse_overwriting([log_path, candidates_json], sources, "petaseg correct")
    model = ErrorModel.load(model) if isinstance(model, str) else model
    th = {**model.thresholds, **(thresholds or {})}
    run_features(fragments_url, raw_url, boundary_url, root, client=client, progress=progress)
    tables = Tables.read(root)
    log = open_or_create_log(log_path, lut, fragments_url, root)
    try:
        start = log.head
        current = log.lut()
        pairs, splits = detect(tables, current)
        split_p = model.predict("split", splits.features)
        fixed, actions = auto_correct(
            current, tables, splits, split_p, lambda kind, x, _pts: model.predict(kind, x), th
        )
        applied = _replay(log, actions)
        # what is left for a person: the candidates of the corrected segmentation
        final = log.lut()
        pairs, splits = detect(tables, final)
        pair_p = model.predict("pair", pairs.features)
        split_p = model.predict("split", splits.features)
        ranked = _ranked(tables, pairs, pair_p, splits, split_p, max_candidates)
        report = {
            "format": "petaseg-candidates/1",
            "edit_log": str(log.path),
            "version_before": start,
            "version_after": log.head,
            "thresholds": th,
            "applied": applied,
            "voxel_size": list(tables.voxel_size),
            "offset": list(tables.offset),
            "candidates": ranked,
        }
    finally:
        log.close()
    Path(candidates_json).parent.mkdir(parents=True, exist_ok=True)
    Path(candidates_json).write_text(json.dumps(report, indent=1))
    return {k: v for k, v in report.items() if k != "candidates"} | {"ranked": len(ranked)}


def _replay(log: EditLog, actions: list[Action]) -> dict[str, int]:
    """Record the auto-correction's actions as edits (merges resolve their segments from the
    contact fragments at the time, as ``auto_correct`` did)."""
    done = {"splits": 0, "merges": 0}
    for a in actions:
        if a.op == "split":
            log.split_fragments(
                a.segment,
                np.array(a.fragments, np.uint64),
                AUTHOR,
                f"auto: merge error, p={a.p:.3f}",
            )
            done["splits"] += 1
        else:
            sa, sb = (int(s) for s in log.lut().lookup(np.array(a.fragments, np.uint64)))
            if sa != sb:
                log.merge(sa, sb, AUTHOR, f"auto: split error, p={a.p:.3f}")
                done["merges"] += 1
    return done


def _ranked(tables, pairs, pair_p, splits, split_p, limit) -> list[dict[str, Any]]:
    rows = []
    for i in range(len(pairs)):
        rows.append(
            {
                "error": "split_error",
                "score": float(pair_p[i]),
                "segments": [int(pairs.a[i]), int(pairs.b[i])],
                "point_nm": _point_nm(pairs.point[i], tables),
                "proposal": {
                    "action": "merge",
                    "fragments": [int(pairs.frag_a[i]), int(pairs.frag_b[i])],
                },
            }
        )
    for i in range(len(splits)):
        rows.append(
            {
                "error": "merge_error",
                "score": float(split_p[i]),
                "segments": [int(splits.segment[i])],
                "point_nm": _point_nm(splits.point[i], tables),
                "proposal": {
                    "action": "split",
                    "source_fragment": int(splits.source[i]),
                    "sink_fragment": int(splits.sink[i]),
                    "moved_fragments": [int(f) for f in splits.moved[i]],
                },
            }
        )
    rows.sort(key=lambda r: -r["score"])
    for rank, r in enumerate(rows[:limit], start=1):
        r["rank"] = rank
    return rows[:limit]
