"""The ranked error candidates of the correction stage (``read_candidates``: its
``candidates.json``), reviewed one at a time: each names the
segments it concerns at the version shown (found again from its fragments, since edits renumber
segments), its point, its score and a one-line reason."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.lut import Lut


def read_candidates(path: str | Path) -> dict[str, Any]:
    """The ranked candidate list written by the correction stage."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"no candidate list at {path}; run `petaseg correct` first") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path} is not valid JSON ({e}); rerun `petaseg correct`") from None
    if not isinstance(data, dict) or not isinstance(data.get("candidates"), list):
        raise InputError(f"{path} has no 'candidates' list; it is not a petaseg candidate file")
    return data


@dataclass(frozen=True)
class Candidate:
    rank: int
    error: str
    score: float
    point_nm: list[float]
    segments: list[int]
    reason: str
    line: str  # what the viewer's status line says


def _fragments(c: dict[str, Any]) -> list[int]:
    p = c.get("proposal") or {}
    if "fragments" in p:
        return [int(f) for f in p["fragments"]]
    return [int(p[k]) for k in ("source_fragment", "sink_fragment") if k in p]


def _reason(error: str, segments: list[int]) -> str:
    if error == "split_error":
        if len(segments) == 2:
            return f"segments {segments[0]} and {segments[1]} look like one cell: alt+m merges"
        return "already merged: nothing left to do here"
    if error == "merge_error":
        return (
            f"segment {segments[0]} looks like two cells: place a source (alt+a) and a sink "
            "(alt+b) on either side, alt+x splits"
        )
    return error


class CandidateQueue:
    """The candidates in rank order, from the first not yet shown."""

    def __init__(self, candidates: list[dict[str, Any]]):
        self.candidates = sorted(candidates, key=lambda c: c.get("rank", 0))
        self.index = 0

    @classmethod
    def find(cls, path: str | Path | None, log: Any) -> CandidateQueue:
        """Candidates from ``path``, or from ``candidates.json`` beside the edit log (the
        workflow's layout), or none."""
        if path is None:
            beside = Path(log.path).parent / "candidates.json"
            path = beside if beside.exists() else None
        return cls(read_candidates(path)["candidates"] if path else [])

    def __len__(self) -> int:
        return len(self.candidates)

    def next(self, lut: Lut) -> Candidate | None:
        if self.index >= len(self.candidates):
            return None
        c = self.candidates[self.index]
        self.index += 1
        frags = _fragments(c)
        if frags:
            segs = sorted(set(lut.lookup(np.asarray(frags, np.uint64)).tolist()))
        else:
            segs = [int(s) for s in c.get("segments", [])]
        error, score = str(c.get("error", "candidate")), float(c.get("score", 0.0))
        reason = _reason(error, segs)
        rank = int(c.get("rank", self.index))
        line = f"candidate {self.index}/{len(self)} (rank {rank}, {error}, score {score:.2f}): "
        return Candidate(rank, error, score, list(c["point_nm"]), segs, reason, line + reason)
