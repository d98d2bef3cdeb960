"""Neuroglancer viewer state (JSON and URL) for an export folder, and the candidate point
annotations of the correction stage as a precomputed annotation layer.

Layer sources are ``precomputed://<base>/<layer>``: ``base`` is where the folder is served
(``petaseg view`` serves it on 127.0.0.1), or any http(s)/gs/s3 URL the folder was copied to.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEMO_APP = "https://neuroglancer-demo.appspot.com/"  # only where a user asks (--public-viewer)
LOCAL_APP = ""  # "#!<state>": append to any Neuroglancer client's URL (`petaseg view` serves one)
ANNOTATION_PROPERTIES = [
    {"id": "score", "type": "float32", "description": "classifier confidence that it is an error"},
    {"id": "rank", "type": "uint32", "description": "position in the ranked list (1 = first)"},
    {
        "id": "error",
        "type": "uint8",
        "enum_values": [0, 1],
        "enum_labels": ["split_error", "merge_error"],
    },
]


def write_point_annotations(
    path: str | Path, candidates: Sequence[dict[str, Any]], voxel_size: Sequence[int]
) -> int:
    """Write one point per candidate (at its ``point_nm``, zyx) with score, rank and error kind
    as properties; returns the number written."""
    import neuroglancer
    import neuroglancer.write_annotations as wa

    space = neuroglancer.CoordinateSpace(
        names=["x", "y", "z"], units="nm", scales=[float(v) for v in voxel_size[::-1]]
    )
    props = [neuroglancer.AnnotationPropertySpec(**p) for p in ANNOTATION_PROPERTIES]
    writer = wa.AnnotationWriter(space, "point", properties=props)
    for i, c in enumerate(candidates):
        z, y, x = (float(p) / float(v) for p, v in zip(c["point_nm"], voxel_size, strict=True))
        writer.add_point(
            [x, y, z],
            id=i + 1,
            score=float(c.get("score", 0.0)),
            rank=int(c.get("rank", i + 1)),
            error=1 if c.get("error") == "merge_error" else 0,
        )
    writer.write(str(path))
    return len(candidates)


def viewer_state(
    base: str,
    voxel_size: Sequence[int],
    shape: Sequence[int],
    offset: Sequence[int] = (0, 0, 0),
    image: str | None = "image",
    segmentation: str | None = "segmentation",
    annotations: str | None = None,
    segments: Sequence[int] = (),
    layout: str = "4panel",
) -> dict[str, Any]:
    """A viewer state with the export's layers, centred on the volume (zyx inputs)."""
    base = base.rstrip("/")
    vs = [float(v) for v in voxel_size[::-1]]
    center = [o / v + s / 2 for o, v, s in zip(offset[::-1], vs, shape[::-1], strict=True)]
    layers: list[dict[str, Any]] = []
    if image:
        layers.append({"type": "image", "source": f"precomputed://{base}/{image}", "name": "image"})
    if segmentation:
        seg: dict[str, Any] = {
            "type": "segmentation",
            "source": f"precomputed://{base}/{segmentation}",
            "name": "segmentation",
            "selectedAlpha": 0.4,
        }
        if segments:
            seg["segments"] = [str(int(s)) for s in segments]
        layers.append(seg)
    if annotations:
        layers.append(
            {
                "type": "annotation",
                "source": f"precomputed://{base}/{annotations}",
                "name": "candidates",
                # hidden at first: all the points at once hide the 3D view; tick the layer to
                # see them, or review them one at a time with `petaseg proofread view`
                "visible": False,
                "shader": "void main() { setColor(prop_error() == 1u ? vec3(1, 0, 1) : vec3(1, 1, 0)); }",
            }
        )
    return {
        "dimensions": {a: [v * 1e-9, "m"] for a, v in zip("xyz", vs, strict=True)},
        "position": center,
        "crossSectionScale": max(shape) / 400,  # the volume fills a ~400 pixel panel
        "projectionScale": 1.5 * max(shape),
        "layers": layers,
        "layout": layout,
        "selectedLayer": {"layer": "segmentation" if segmentation else "image", "visible": False},
    }


def state_url(state: dict[str, Any], app: str = LOCAL_APP) -> str:
    """``<app>#!<url-encoded JSON>``: opens the state in any Neuroglancer client. The default
    names no hosted viewer (an offline lab cannot load one): pass ``DEMO_APP`` to get one."""
    text = json.dumps(state, separators=(",", ":"))
    return f"{app}#!{urllib.parse.quote(text, safe='')}"


def rebase_state(state: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The same state with layer sources moved from ``old`` to ``new`` base URL."""
    out = json.loads(json.dumps(state))
    for layer in out.get("layers", []):
        src = layer.get("source")
        if isinstance(src, str) and src.startswith(f"precomputed://{old.rstrip('/')}"):
            layer["source"] = src.replace(old.rstrip("/"), new.rstrip("/"), 1)
    return out
