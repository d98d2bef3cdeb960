"""Parquet tables of the segmentation stages (region graph, merge scores, lookup tables), one
file per block, read and written by URL (local or s3:// through fsspec) with pyarrow.

Layout under a tables root (see :func:`tables_root`)::

    graph/edges/<block>.parquet        u, v, count, sum, hist   (one row per fragment pair)
    graph/nodes/<block>.parquet        id, size                 (voxels the block owns)
    graph/meta.json                    fragments URL, id scheme, block grid, histogram bins
    agglomeration/local/<block>.parquet   u, v, score          (merges decided in a block's context)
    agglomeration/scores/<block>.parquet  u, v, score          (merge score of each edge)
    luts/<threshold>/<partition>.parquet  fragment, segment    (fragment -> segment)
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import InputError
from pipeline.io.fs import beside_container, filesystem, join, write_whole


def tables_root(output_url: str) -> str:
    """Where the tables of a segmentation run live: beside the Zarr container, like done
    markers (``/d/out.zarr/seg`` -> ``/d/out.zarr.tables/seg``), else ``<url>.tables``."""
    return beside_container(output_url, ".tables")


def write_table(url: str, columns: dict[str, Any]) -> None:
    """Write one Parquet file (whole-object write; a temp file and rename on local disks)."""
    fields = {}
    for name, col in columns.items():
        if isinstance(col, np.ndarray) and col.ndim == 2:
            flat = pa.array(np.ascontiguousarray(col).ravel())
            fields[name] = pa.FixedSizeListArray.from_arrays(flat, col.shape[1])
        else:
            fields[name] = pa.array(np.asarray(col))
    buf = io.BytesIO()
    pq.write_table(pa.table(fields), buf, compression="zstd")
    write_whole(url, buf.getvalue())


def read_table(url: str, columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """Read one Parquet file into numpy arrays (fixed-size list columns as 2D arrays)."""
    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        table = pq.read_table(f, columns=columns)
    out = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        if pa.types.is_fixed_size_list(col.type):
            width = col.type.list_size
            values = col.flatten().to_numpy(zero_copy_only=False)
            out[name] = values.reshape(len(col), width)
        else:
            out[name] = col.to_numpy(zero_copy_only=False)
    return out


def table_exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def num_rows(url: str) -> int:
    """Rows of a Parquet file from its footer, without reading the data."""
    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        return pq.ParquetFile(f).metadata.num_rows


def block_table(root: str, kind: str, block_id: int | str) -> str:
    return join(root, kind, f"{block_id}.parquet")


def iter_block_tables(
    root: str, kind: str, num_blocks: int, columns: list[str] | None = None
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Stream the per-block tables of ``kind`` (e.g. "graph/edges") in block order, one at a
    time, so a global pass holds one block's table plus what it accumulates."""
    for block_id in range(num_blocks):
        yield block_id, read_table(block_table(root, kind, block_id), columns)


def threshold_name(t: float) -> str:
    """``0.5`` -> ``t0.5`` (folder and volume-name suffix of a threshold)."""
    return f"t{t:.4f}".rstrip("0").rstrip(".")


def lut_root(root: str, threshold: float) -> str:
    return f"{root}/luts/{threshold_name(threshold)}"


def lut_table(lut: str, partition: int | str) -> str:
    return f"{lut}/{partition}.parquet"


def write_json(url: str, obj: dict) -> None:
    fs, path = filesystem(url)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(path, "w") as f:
        json.dump(obj, f, indent=1, default=str)


def read_json(url: str) -> dict:
    fs, path = filesystem(url)
    with fs.open(path, "r") as f:
        return json.load(f)


def read_graph_meta(root: str) -> dict[str, Any]:
    try:
        return read_json(f"{root}/graph/meta.json")
    except FileNotFoundError:
        raise InputError(
            f"no region graph under {root}: run `petaseg graph` (or `petaseg segment`) first"
        ) from None


def write_model_table(url: str, columns: dict[str, Any], meta: dict[str, Any]) -> None:
    """A trained model's examples as one Parquet file with ``meta`` (format, features, settings)
    in its schema metadata: models are refitted from these on load, never unpickled."""
    table = pa.table(columns).replace_schema_metadata({"petaseg": json.dumps(meta)})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    write_whole(url, buf.getvalue())


def read_model_table(url: str, what: str, fix: str) -> tuple[pa.Table, dict[str, Any]]:
    """The table and metadata ``write_model_table`` wrote; a missing or unreadable file is an
    ``InputError`` naming ``what`` it should be (e.g. "correction model") and the ``fix``."""
    fs, path = filesystem(url)
    try:
        with fs.open(path, "rb") as f:
            table = pq.read_table(io.BytesIO(f.read()))
        meta = json.loads(table.schema.metadata[b"petaseg"])
    except FileNotFoundError:
        raise InputError(f"no {what} at {url}; {fix}") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file
        raise InputError(f"{url} is not a petaseg {what} ({e})") from None
    return table, meta
