"""Done markers: which blocks of a stage have been written, kept beside the output.

Blocks are grouped in runs of ``group_size`` consecutive ids; one small file per group holds a
bitmap of the blocks in it that finished. Only the task that runs a group writes its file, so
markers need no locks, and the marker store grows with the number of groups, not blocks. The
folder name carries a hash of the stage's parameters: a changed parameter finds no markers and
recomputes, an unchanged one skips finished blocks. A ``complete`` file is written last, after
every block succeeded, so a finished stage is recognised with one read.

Layout: ``<output>.done/<stage>-<hash>/{meta.json, complete, groups/<g // 1000>/<g>}`` (for Zarr
outputs inside a container the ``.done`` folder sits beside the container: ``out.zarr.done/...``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from pipeline.io.fs import beside_container, filesystem, join, write_whole

SHARD = 1000  # group files per folder


def markers_root(output_url: str) -> str:
    """``/d/out.zarr/fragments`` -> ``/d/out.zarr.done/fragments``; else ``<url>.done``."""
    return beside_container(output_url.rstrip("/").removeprefix("precomputed://"), ".done")


def params_hash(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class DoneMarkers:
    def __init__(self, output_url: str, stage: str, payload: dict[str, Any], group_size: int):
        self.stage, self.group_size = stage, group_size
        self.hash = params_hash({"stage": stage, "group_size": group_size, **payload})
        self.url = join(markers_root(output_url), f"{stage}-{self.hash}")
        self.payload = payload
        self._listing: tuple[int, set[str]] | None = None

    # --- client side -----------------------------------------------------------------------
    def fs(self):
        return filesystem(self.url)

    def prepare(self, num_blocks: int) -> None:
        fs, path = self.fs()
        fs.makedirs(path + "/groups", exist_ok=True)
        if not fs.exists(path + "/meta.json"):
            meta = {
                "stage": self.stage,
                "hash": self.hash,
                "group_size": self.group_size,
                "num_blocks": num_blocks,
                **self.payload,
            }
            with fs.open(path + "/meta.json", "w") as f:
                json.dump(meta, f, indent=1, default=str)

    def is_complete(self) -> bool:
        fs, path = self.fs()
        return fs.exists(path + "/complete")

    def mark_complete(self, num_blocks: int) -> None:
        fs, path = self.fs()
        with fs.open(path + "/complete", "w") as f:
            json.dump({"blocks": num_blocks}, f)

    def clear_complete(self) -> None:
        fs, path = self.fs()
        if fs.exists(path + "/complete"):
            fs.rm(path + "/complete")

    def _group_path(self, group: int) -> str:
        return f"{self.url}/groups/{group // SHARD}/{group}"

    def done_in_group(self, group: int, size: int) -> np.ndarray:
        """Bool mask of finished blocks in ``group``. Lists one shard folder at a time, so a rerun
        over many groups costs one listing per 1000 groups, not one request per group."""
        shard = group // SHARD
        if self._listing is None or self._listing[0] != shard:
            fs, path = self.fs()
            folder = f"{path}/groups/{shard}"
            names = (
                {p.rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False)}
                if fs.exists(folder)
                else set()
            )
            self._listing = (shard, names)
        if str(group) not in self._listing[1]:
            return np.zeros(size, dtype=bool)
        return read_group(self._group_path(group), size)


def read_group(url: str, size: int) -> np.ndarray:
    fs, path = filesystem(url)
    try:
        with fs.open(path, "rb") as f:
            bits = np.frombuffer(f.read(), dtype=np.uint8)
    except FileNotFoundError:
        return np.zeros(size, dtype=bool)
    mask = np.unpackbits(bits)[:size].astype(bool)
    return np.pad(mask, (0, size - mask.size)) if mask.size < size else mask


def write_group(url: str, mask: np.ndarray) -> None:
    """Write a group's bitmap atomically where the filesystem allows (temp file, then rename)."""
    write_whole(url, np.packbits(mask.astype(bool)).tobytes())


def progress_of(marker_url: str) -> dict:
    """Blocks done of one stage's markers folder (for ``petaseg status``; reads every group file,
    so it costs one read per group, about 1000 per stage)."""
    fs, path = filesystem(marker_url)
    with fs.open(path + "/meta.json") as f:
        meta = json.load(f)
    done = 0
    for group_file in fs.glob(path + "/groups/*/*"):
        if group_file.endswith(".tmp"):
            continue
        with fs.open(group_file, "rb") as f:
            done += int(np.unpackbits(np.frombuffer(f.read(), dtype=np.uint8)).sum())
    return {
        "stage": meta["stage"],
        "hash": meta["hash"],
        "blocks": meta.get("num_blocks"),
        "done": done,
        "complete": fs.exists(path + "/complete"),
    }
