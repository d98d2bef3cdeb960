"""Proofreading: a durable SQLite edit log of merges and splits over a lookup table, its
lookup-table versions, and a segment's fragment graph with the minimum cut that splits it; a
Neuroglancer session that shows a version of the log and turns key presses into edits."""

from pipeline.proofread.editlog import EditLog, EditResult
from pipeline.proofread.graph import min_cut, segment_edges
from pipeline.proofread.review import Candidate, CandidateQueue
from pipeline.proofread.segview import SegmentArray, SegmentMeshes
from pipeline.proofread.store import EditConflict, EditLogError, versions_folder
from pipeline.proofread.versions import VersionFileError

__all__ = [
    "Candidate",
    "CandidateQueue",
    "EditConflict",
    "EditLog",
    "EditLogError",
    "EditResult",
    "ProofreadSession",
    "SegmentArray",
    "SegmentMeshes",
    "VersionFileError",
    "min_cut",
    "segment_edges",
    "versions_folder",
]


def __getattr__(name: str):
    if name == "ProofreadSession":  # imports neuroglancer: only when a viewer is wanted
        from pipeline.proofread.session import ProofreadSession

        return ProofreadSession
    raise AttributeError(name)
