"""cloud-volume and cloud-files (Neuroglancer precomputed storage), imported on first use: they
take over a second to import, which neither the CLI's start-up nor a worker that never touches a
precomputed layer should pay. Every use in petaseg goes through here."""

from __future__ import annotations

import os
from typing import Any


def cloudpath(path_or_url: str) -> str:
    """A cloud-volume path: ``/a/b`` -> ``file:///a/b``; ``precomputed://`` dropped; URLs
    (``s3://``, ``gs://``) unchanged."""
    text = str(path_or_url).removeprefix("precomputed://")
    if "://" not in text:
        text = "file://" + os.path.abspath(text)
    return text


def open_cloudvolume(path: str, mip: int = 0, **options: Any):
    """A ``CloudVolume`` of a layer (a path or URL) at ``mip``: bounded, no missing chunks
    filled in, no progress bars."""
    from cloudvolume import CloudVolume

    return CloudVolume(
        cloudpath(path), mip=mip, progress=False, fill_missing=False, bounded=True, **options
    )


def new_layer_info(**options: Any) -> dict[str, Any]:
    """``CloudVolume.create_new_info``: the ``info`` of a new layer."""
    from cloudvolume import CloudVolume

    return CloudVolume.create_new_info(**options)


def cloud_files(path: str):
    """``CloudFiles`` over a layer's folder (a path or URL)."""
    from cloudfiles import CloudFiles

    return CloudFiles(cloudpath(path))


def skeleton_class():
    """cloud-volume's ``Skeleton`` (precomputed skeleton encoding and merging)."""
    from cloudvolume import Skeleton

    return Skeleton
