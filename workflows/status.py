"""Progress of a run read from what it left on storage: stage records and block done markers.

Works from any machine that sees the output, whether or not the run's client is still attached.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.io.fs import filesystem
from pipeline.runner.done import markers_root, progress_of
from workflows.steps import STEPS

STAGE_ORDER = [step.name for step in STEPS]


def pipeline_order(name: str) -> tuple[int, str]:
    """Sorts stage names in the order a workflow runs them, a sub-stage (``export-objects``)
    with its stage; others last."""
    for i, stage in enumerate(STAGE_ORDER):
        if name == stage or name.startswith(stage + "-"):
            return (i, name)
    return (len(STAGE_ORDER), name)


def run_status(output: str) -> dict[str, Any]:
    """The stage records (in pipeline order) and the block progress of every blockwise stage
    of the run whose output container is ``output``."""
    root = markers_root(output.rstrip("/") + "/x").rsplit("/", 1)[0]
    fs, path = filesystem(root)
    if not fs.exists(path):
        return {"output": output, "stages": {}, "blocks": [], "found": False}
    stages: dict[str, Any] = {}
    if fs.exists(path + "/workflow"):
        records = {r.rsplit("/", 1)[-1][:-5]: r for r in fs.glob(path + "/workflow/*.json")}
        for name in sorted(records, key=pipeline_order):
            with fs.open(records[name]) as f:
                saved = json.load(f)
            stages[name] = saved.get("timing", {})
    blocks = []
    for meta in sorted(fs.glob(path + "/**/meta.json")):
        folder = meta.rsplit("/", 1)[0]
        prefix = "" if "://" not in root else root.split("://", 1)[0] + "://"
        info = progress_of(prefix + folder)
        info["volume"] = folder[len(path) + 1 :].rsplit("/", 1)[0]
        blocks.append(info)
    blocks.sort(key=lambda b: (pipeline_order(b["stage"]), b["volume"]))
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
