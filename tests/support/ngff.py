"""The official OME-Zarr (NGFF) 0.5 JSON schemas, kept offline in tests/pipeline/io/ngff_0_5, as
validators; and the attributes of a Zarr v3 node as written on disk."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parents[1] / "pipeline" / "io" / "ngff_0_5"


def ngff_validator(name: str) -> Draft202012Validator:
    """A validator of the schema ``name`` (e.g. ``image.schema``), its references resolved
    offline."""
    resources = []
    for path in SCHEMAS.glob("*.schema"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    registry = Registry().with_resources(resources)
    return Draft202012Validator(json.loads((SCHEMAS / name).read_text()), registry=registry)


def group_attrs(url: str) -> dict:
    """The attributes of the Zarr v3 group (or array) at the local path ``url``."""
    return json.loads((Path(url) / "zarr.json").read_text())["attributes"]
