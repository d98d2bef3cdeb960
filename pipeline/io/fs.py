"""Filesystem access by URL (local, s3://, gs://) through fsspec, for stores and done markers:
whole-file writes that readers never see half done, and where data derived from an output lives."""

from __future__ import annotations

import os
from typing import Any

import fsspec


def storage_options(url: str) -> dict[str, Any]:
    """Options for remote stores. ``AWS_ENDPOINT_URL`` points s3:// at a non-AWS server (MinIO, moto)."""
    if url.startswith("s3://"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("PETASEG_S3_ENDPOINT")
        opts: dict[str, Any] = {}
        if endpoint:
            opts["client_kwargs"] = {"endpoint_url": endpoint}
        if os.environ.get("PETASEG_S3_ANON"):
            opts["anon"] = True
        return opts
    return {}


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the path inside it for a URL or a local path."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    fs, path = fsspec.core.url_to_fs(url, **storage_options(url))
    return fs, path


def join(url: str, *parts: str) -> str:
    return "/".join([url.rstrip("/"), *parts])


def beside_container(url: str, suffix: str) -> str:
    """Where data derived from an output lives: beside its Zarr container (``/d/out.zarr/seg``
    -> ``/d/out.zarr<suffix>/seg``), else ``<url><suffix>``."""
    url = url.rstrip("/").removeprefix("file://")
    if ".zarr/" in url:
        root, inner = url.split(".zarr/", 1)
        return f"{root}.zarr{suffix}/{inner}"
    return url + suffix


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return (
        getattr(fs, "protocol", None) in ("file", ("file", "local"))
        or fs.__class__.__name__ == "LocalFileSystem"
    )


def write_whole(url: str, data: bytes) -> None:
    """Write one file whole: on local disks through a temp file and a rename, so a reader never
    sees half of it (object stores write whole objects atomically)."""
    fs, path = filesystem(url)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    target = path + ".tmp" if is_local(fs) else path
    with fs.open(target, "wb") as f:
        f.write(data)
    if target != path:
        fs.mv(target, path)
