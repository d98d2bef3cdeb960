"""Storage: volumes by URL (one module per format behind the ``Volume`` interface), boundary maps
and affinities as the segmentation stages read them, Parquet tables and JSON records by URL (local, s3://, gs://
through fsspec)."""

from pipeline.io.affinities import affinity_offsets, has_affinities, read_affinities
from pipeline.io.base import Volume, VolumeLayout, check_dtype
from pipeline.io.boundary import read_boundary, to_boundary
from pipeline.io.fs import filesystem, join
from pipeline.io.tables import (
    block_table,
    read_graph_meta,
    read_json,
    read_table,
    table_exists,
    tables_root,
    write_json,
    write_table,
)
from pipeline.io.volume import create_volume, exists, open_input, open_volume

__all__ = [
    "Volume",
    "VolumeLayout",
    "affinity_offsets",
    "block_table",
    "check_dtype",
    "create_volume",
    "exists",
    "filesystem",
    "has_affinities",
    "join",
    "open_input",
    "open_volume",
    "read_affinities",
    "read_boundary",
    "read_graph_meta",
    "read_json",
    "read_table",
    "table_exists",
    "tables_root",
    "to_boundary",
    "write_json",
    "write_table",
]
