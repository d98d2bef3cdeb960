"""Proofreading: a durable SQLite edit log of merges and splits over a lookup table, its
lookup-table versions, and a segment's fragment graph with the minimum cut that splits it."""

from pipeline.proofread.editlog import EditLog, EditResult
from pipeline.proofread.graph import min_cut, segment_edges
from pipeline.proofread.store import EditConflict, EditLogError, versions_folder
from pipeline.proofread.versions import VersionFileError

__all__ = [
    "EditConflict",
    "EditLog",
    "EditLogError",
    "EditResult",
    "VersionFileError",
    "min_cut",
    "segment_edges",
    "versions_folder",
]
