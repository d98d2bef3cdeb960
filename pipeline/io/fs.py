"""Filesystem access by URL (local, s3://, gs://) through fsspec, for stores and done markers."""

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
