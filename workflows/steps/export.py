"""The export step: the EM and the final segmentation (meshes, skeletons) as Neuroglancer
precomputed layers, the correction candidates as annotations, and a viewer state."""

from __future__ import annotations

from typing import Any

from pipeline.export.objects import ObjectParams
from pipeline.export.precomputed import export
from workflows.steps.segmentation import voxels
from workflows.steps.step import RunContext, Step


def export_target(ctx: RunContext) -> str:
    """``stages.export.path``, else ``<output without .zarr>.neuroglancer``."""
    out = ctx.values["output"]
    return ctx.stages.export.path or f"{out[: -len('.zarr')]}.neuroglancer"


def export_output(ctx: RunContext) -> list[str]:
    return [export_target(ctx)]


def export_step(ctx: RunContext) -> dict[str, Any]:
    section, target = ctx.stages.export, export_target(ctx)
    final = ctx.values["final_segmentation"]
    result = export(
        target,
        image_url=ctx.values.get("raw"),
        segmentation_url=final,
        candidates=ctx.values.get("candidates") if "://" not in target else None,
        levels=section.levels,
        objects=ObjectParams(
            meshes=section.meshes, skeletons=section.skeletons, min_size=section.min_size
        ),
        client=ctx.client,
        progress=ctx.progress,
    )
    return {
        "neuroglancer": target,
        "viewer_state": f"{target}/viewer_state.json",
        "viewer_url": result.url,
        "voxels": voxels(final),
    }


def export_config(ctx: RunContext) -> dict[str, Any]:
    return {**ctx.stages.export.model_dump(), "segmentation": ctx.values["final_segmentation"]}


EXPORT = Step(
    "export",
    ("final_segmentation", "output"),
    ("neuroglancer", "viewer_state", "viewer_url"),
    export_step,
    config=export_config,
    writes=export_output,
)
