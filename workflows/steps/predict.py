"""The predict step: the boundary network over the raw EM, on GPU workers where there are any."""

from __future__ import annotations

from typing import Any

from pipeline.errors import ClusterError, InputError
from pipeline.runner.blockwise import workers_offering
from pipeline.stages.predict import predict
from workflows.steps.segmentation import voxels
from workflows.steps.step import RunContext, Step


def require_gpu_workers(client: Any) -> None:
    """``cluster.require_gpu``: refuse at once rather than queue inference that never starts."""
    offering, workers = workers_offering(client, {"GPU": 1})
    if not offering:
        raise ClusterError(
            f"the workflow sets cluster.require_gpu, but none of the {workers} worker(s) "
            "advertises a GPU: start workers with `dask worker ... --resources GPU=1` (SLURM and "
            "Kubernetes specs in cluster/ do this), or set cluster.require_gpu: false to run on CPU"
        )


def predict_step(ctx: RunContext) -> dict[str, Any]:
    section = ctx.stages.predict
    if not section.enabled:
        raise InputError("stages.predict.enabled is false but the input has no boundaries")
    if ctx.values.get("require_gpu"):
        require_gpu_workers(ctx.client)
    target = boundaries_output(ctx)[0]
    report = predict(
        ctx.values["model"],
        ctx.values["raw"],
        target,
        block=section.block,
        patch=section.patch,
        overlap=section.overlap,
        tta=section.tta,
        dtype=section.dtype,
        batch_size=section.batch_size,
        chunks=section.chunks,
        client=ctx.client,
        progress=ctx.progress,
    )
    return {"boundaries": target, "voxels": voxels(target), "blocks": report.blocks_total}


def boundaries_output(ctx: RunContext) -> list[str]:
    return [f"{ctx.values['output']}/boundaries"]


def predict_config(ctx: RunContext) -> dict[str, Any]:
    return {"model": ctx.values["model"], **ctx.stages.predict.model_dump()}


PREDICT = Step(
    "predict",
    ("raw", "output", "model"),
    ("boundaries",),
    predict_step,
    config=predict_config,
    writes=boundaries_output,
)
