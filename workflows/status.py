"""Progress of a run read from what it left on storage: stage records and block done markers.

Works from any machine that sees the output, whether or not the run's client is still attached.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.io.fs import filesystem
from pipeline.runner.done import markers_root, progress_of


def run_status(output: str) -> dict[str, Any]:
    root = markers_root(output.rstrip("/") + "/x").rsplit("/", 1)[0]
    fs, path = filesystem(root)
    if not fs.exists(path):
        return {"output": output, "stages": {}, "blocks": [], "found": False}
    stages: dict[str, Any] = {}
    if fs.exists(path + "/workflow"):
        for record in sorted(fs.glob(path + "/workflow/*.json")):
            with fs.open(record) as f:
                saved = json.load(f)
            stages[record.rsplit("/", 1)[-1][:-5]] = saved.get("timing", {})
    blocks = []
    for meta in sorted(fs.glob(path + "/**/meta.json")):
        folder = meta.rsplit("/", 1)[0]
        prefix = "" if "://" not in root else root.split("://", 1)[0] + "://"
        info = progress_of(prefix + folder)
        info["volume"] = folder[len(path) + 1 :].rsplit("/", 1)[0]
        blocks.append(info)
    return {"output": output, "stages": stages, "blocks": blocks, "found": True}


def status_text(status: dict[str, Any]) -> str:
    if not status["found"]:
        return (
            f"{status['output']}: no run found (no done markers beside it); give the output "
            "container of a workflow (its `output:` key), e.g. out/run.zarr"
        )
    lines = [f"{status['output']}"]
    for name, timing in status["stages"].items():
        lines.append(f"  stage {name:<12} finished ({timing.get('seconds', 0):.1f} s)")
    for b in status["blocks"]:
        total = b["blocks"] or 0
        pct = 100.0 * b["done"] / total if total else 0.0
        state = "complete" if b["complete"] else f"{pct:5.1f}%"
        lines.append(f"  {b['stage']:<12} {b['volume']:<24} {b['done']}/{total} blocks  {state}")
    return "\n".join(lines)
