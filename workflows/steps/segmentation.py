"""The segmentation steps: fragments -> region graph -> agglomeration -> lookup tables ->
relabelled segmentations (the chain ``petaseg run`` and ``petaseg segment`` share)."""

from __future__ import annotations

from typing import Any

from pipeline.io.volume import open_volume
from pipeline.seg.mutex import MutexParams
from pipeline.seg.watershed import FragmentParams
from pipeline.stages.agglomerate import run_agglomerate
from pipeline.stages.fragments import run_fragments
from pipeline.stages.graph import run_graph
from pipeline.stages.mutex import run_mutex_fragments
from pipeline.stages.pyramid import run_pyramid
from pipeline.stages.relabel import output_for, relabel_luts
from pipeline.stages.segment import run_segment
from workflows.schema import MUTEX_FIELDS, FragmentsStage
from workflows.steps.step import RunContext, Step


def voxels(url: str) -> int:
    """Voxels of a volume (for the voxels/s of a step)."""
    z, y, x = open_volume(url).shape
    return int(z) * int(y) * int(x)


def fragment_params(section: FragmentsStage) -> FragmentParams:
    return FragmentParams(**section.model_dump(exclude={"block", "context"} | MUTEX_FIELDS))


def mutex_params(section: FragmentsStage) -> MutexParams:
    return MutexParams(section.bias_short, section.bias_long, section.long_range_stride)


def fragments(ctx: RunContext) -> dict[str, Any]:
    """Watershed fragments of the boundary map, (``method: affinity_watershed``) watershed
    fragments over the faces' affinities, or (``method: mutex``) mutex-watershed fragments of
    the affinities; the later steps take any."""
    section, url = ctx.stages.fragments, ctx.values["fragments"]
    args = (ctx.values["boundaries"], url)
    if section.method == "mutex":
        report = run_mutex_fragments(
            *args, mutex_params(section), section.block, section.context, ctx.client, ctx.progress
        )
    else:
        report = run_fragments(
            *args,
            fragment_params(section),
            section.block,
            section.context,
            ctx.client,
            ctx.progress,
            method=section.method,
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
        faces=ctx.stages.graph.faces,
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
    levels = None
    if ctx.stages.segment.pyramid:
        levels = 1 + len(run_pyramid(final["segmentation"], True, None, ctx.client, ctx.progress))
    return {
        "segmentations": written,
        "final_segmentation": final["segmentation"],
        "final_levels": levels,
        "voxels": voxels(ctx.values["fragments"]) * len(written),
    }


def relabel_config(ctx: RunContext) -> dict[str, Any]:
    return {
        "luts": [i["lut"] for i in ctx.values["luts"]],
        "corrected": ctx.values.get("correction"),
        "pyramid": ctx.stages.segment.pyramid,
    }


def segmentation_outputs(ctx: RunContext) -> list[str]:
    """Every segmentation volume the relabel step will write (one per threshold, and the
    corrected one when the plan corrects)."""
    base, thresholds = ctx.values["segmentation"], ctx.stages.segment.thresholds
    outs = [output_for(base, t, len(thresholds) > 1) for t in thresholds]
    return outs + ([f"{base.rstrip('/')}_corrected"] if ctx.values.get("corrects") else [])


def fragments_output(ctx: RunContext) -> list[str]:
    return [ctx.values["fragments"]]


def tables_output(ctx: RunContext) -> list[str]:
    return [ctx.values["tables"]]


def fragments_config(ctx: RunContext) -> dict[str, Any]:
    return ctx.stages.fragments.hashed()


FRAGMENTS = Step(
    "fragments",
    ("boundaries",),
    ("fragments",),
    fragments,
    config=fragments_config,
    writes=fragments_output,
)


def graph_config(ctx: RunContext) -> dict[str, Any]:
    return ctx.stages.graph.hashed()


GRAPH = Step(
    "graph",
    ("fragments", "boundaries"),
    ("tables",),
    graph,
    config=graph_config,
    writes=tables_output,
)
AGGLOMERATE = Step("agglomerate", ("tables",), (), agglomerate, writes=tables_output)
SEGMENT = Step("segment", ("tables",), ("luts",), segment, writes=tables_output)
RELABEL = Step(
    "relabel",
    ("fragments", "luts", "segmentation"),
    ("segmentations", "final_segmentation"),
    relabel,
    config=relabel_config,
    writes=segmentation_outputs,
)
