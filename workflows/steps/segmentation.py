"""The segmentation steps: fragments -> region graph -> agglomeration -> lookup tables ->
relabelled segmentations (the chain ``petaseg run`` and ``petaseg segment`` share)."""

from __future__ import annotations

from typing import Any

from pipeline.io.volume import open_volume
from pipeline.seg.watershed import FragmentParams
from pipeline.stages.agglomerate import run_agglomerate
from pipeline.stages.fragments import run_fragments
from pipeline.stages.graph import run_graph
from pipeline.stages.relabel import relabel_luts
from pipeline.stages.segment import run_segment
from workflows.schema import FragmentsStage
from workflows.steps.step import RunContext, Step


def voxels(url: str) -> int:
    """Voxels of a volume (for the voxels/s of a step)."""
    z, y, x = open_volume(url).shape
    return int(z) * int(y) * int(x)


def fragment_params(section: FragmentsStage) -> FragmentParams:
    return FragmentParams(**section.model_dump(exclude={"block", "context"}))


def fragments(ctx: RunContext) -> dict[str, Any]:
    section, url = ctx.stages.fragments, ctx.values["fragments"]
    report = run_fragments(
        ctx.values["boundaries"],
        url,
        fragment_params(section),
        section.block,
        section.context,
        ctx.client,
        ctx.progress,
    )
    return {
        "fragments": url,
        "voxels": voxels(url),
        "blocks": report.blocks_total,
        "report": report.as_dict(),
    }


def graph(ctx: RunContext) -> dict[str, Any]:
    tables = ctx.values["tables"]
    report = run_graph(
        ctx.values["fragments"],
        ctx.values["boundaries"],
        tables,
        ctx.stages.graph.bins,
        client=ctx.client,
        progress=ctx.progress,
    )
    return {
        "tables": tables,
        "voxels": voxels(ctx.values["fragments"]),
        "blocks": report.blocks_total,
        "report": report.as_dict(),
    }


def agglomerate(ctx: RunContext) -> dict[str, Any]:
    section = ctx.stages.agglomerate
    info = run_agglomerate(
        ctx.values["tables"],
        section.scoring,
        section.max_global_edges,
        section.local_threshold,
        ctx.client,
        ctx.progress,
    )
    return {"agglomeration": info, "voxels": voxels(ctx.values["fragments"])}


def segment(ctx: RunContext) -> dict[str, Any]:
    return {"luts": run_segment(ctx.values["tables"], ctx.stages.segment.thresholds)}


def relabel(ctx: RunContext) -> dict[str, Any]:
    written = relabel_luts(
        ctx.values["fragments"],
        ctx.values["luts"],
        ctx.values["segmentation"],
        ctx.client,
        ctx.progress,
        corrected=ctx.values.get("correction"),
    )
    # what proofreading starts from: the corrected segmentation, else the first threshold's
    final = next((s for s in written if s["corrected"]), written[0])
    return {
        "segmentations": written,
        "final_segmentation": final["segmentation"],
        "voxels": voxels(ctx.values["fragments"]) * len(written),
    }


def relabel_config(ctx: RunContext) -> dict[str, Any]:
    return {
        "luts": [i["lut"] for i in ctx.values["luts"]],
        "corrected": ctx.values.get("correction"),
    }


FRAGMENTS = Step("fragments", ("boundaries",), ("fragments",), fragments)
GRAPH = Step("graph", ("fragments", "boundaries"), ("tables",), graph)
AGGLOMERATE = Step("agglomerate", ("tables",), (), agglomerate)
SEGMENT = Step("segment", ("tables",), ("luts",), segment)
RELABEL = Step(
    "relabel",
    ("fragments", "luts", "segmentation"),
    ("segmentations", "final_segmentation"),
    relabel,
    config=relabel_config,
)
