"""What made an output: the stage, its parameters and the package version, stored in its attrs."""

from __future__ import annotations

import datetime
from importlib import metadata
from typing import Any


def package_version() -> str:
    try:
        return metadata.version("petaseg")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def provenance(stage: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "stage": stage,
        "params": params,
        "petaseg_version": package_version(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **extra,
    }
