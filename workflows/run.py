"""Run a plan of declared steps (``workflows.steps``): a whole workflow through the stage log
(each step skipped when it already finished with the same parameters and inputs), or the
segmentation sub-plan that ``petaseg segment`` runs on a boundary map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.io.tables import tables_root
from pipeline.io.urls import refuse_overwriting
from pipeline.provenance import package_version
from workflows.schema import Stages, Workflow
from workflows.stage_log import StageLog
from workflows.steps import (
    SEGMENTATION,
    RunContext,
    Step,
    check_input,
    correction_model,
    plan_of,
)
from workflows.summary import summary_files, write_overlay, write_summary

OUTPUTS = (
    "raw",
    "boundaries",
    "ground_truth",
    "fragments",
    "tables",
    "edit_log",
    "candidates",
    "segmentations",
    "final_segmentation",
    "neuroglancer",
    "viewer_state",
    "viewer_url",
)


def check_plan_outputs(
    steps: Sequence[Step], ctx: RunContext, inputs: Sequence[str | None]
) -> None:
    """Refuse a plan, before any step runs, when something a step would write is one of the
    given inputs, lies inside one or holds one."""
    outputs = [out for step in steps for out in step.outputs(ctx)]
    refuse_overwriting(outputs, inputs, "this run")


def run_steps(
    steps: Sequence[Step], ctx: RunContext, log: StageLog | None = None
) -> dict[str, dict[str, Any]]:
    """Run ``steps`` in order on ``ctx`` (through ``log`` when given); each step's provided
    values join the context for the steps after it. Returns the record of every step."""
    records = {}
    for step in steps:
        if log is None:
            record = step(ctx)
        else:
            config = step.configuration(ctx)
            record = log.run(step.name, config, lambda s=step: s(ctx), ctx.progress, step.provides)
        ctx.values.update({k: record[k] for k in step.provides if k in record})
        records[step.name] = record
    return records


def workflow_context(wf: Workflow, client: Any, progress: bool) -> RunContext:
    """Where a workflow's steps read and write: everything inside ``wf.output``."""
    out = wf.output.rstrip("/")
    segmentation = f"{out}/segmentation"
    values = {
        "input": wf.input,
        "output": out,
        "model": wf.model,
        "require_gpu": wf.cluster.require_gpu,
        "fragments": f"{out}/fragments",
        "segmentation": segmentation,
        "tables": tables_root(segmentation),
        "corrects": wf.stages.correct.enabled,
    }
    return RunContext(wf.stages, client, progress, values)


def check_scoring(stages: Stages) -> None:
    """A learned agglomeration model (``scoring: learned:<model>``) that does not exist or does
    not load is refused before fragments and graph run, not when agglomeration starts."""
    scoring = stages.agglomerate.scoring
    if scoring.startswith("learned:"):
        from pipeline.stages.learned_model import edge_model

        edge_model(scoring.split(":", 1)[1])


def check_workflow(wf: Workflow) -> None:
    """What can be refused before any work (and before a cluster starts): a correction or edge
    model that does not exist, an input that cannot be opened (named by its key, e.g.
    input.raw)."""
    if wf.stages.correct.enabled:
        correction_model(wf.stages.correct.model)
    check_scoring(wf.stages)
    if wf.input.synthetic is None:
        check_input(wf.input)


def run_workflow(wf: Workflow, client: Any, progress: bool = True) -> dict[str, Any]:
    """Run every step of ``wf`` on ``client``; return a summary (step times, outputs, metrics),
    also written beside a local output as ``<name>.summary.json`` with ``<name>.overlay.png``.
    Local paths are recorded absolute; every input is opened before the first step runs."""
    wf = wf.with_absolute_paths()
    check_workflow(wf)
    ctx = workflow_context(wf, client, progress)
    plan = plan_of(wf)
    check_plan_outputs(plan, ctx, [wf.input.raw, wf.input.boundaries, wf.input.ground_truth])
    log = StageLog(ctx.values["output"], [s.name for s in plan])
    run_steps(plan, ctx, log)
    out = ctx.values["output"]
    summary = {
        "workflow": wf.name,
        "output": out,
        "petaseg_version": package_version(),
        "stages": log.times,
        "outputs": {k: ctx.values[k] for k in OUTPUTS if k in ctx.values},
        "metrics": ctx.values.get("metrics", []),
        "correction": ctx.values.get("correction"),
    }
    if "://" not in out:
        summary_file, overlay_file = summary_files(out)
        overlay = write_overlay(summary["outputs"], overlay_file)
        if overlay is not None:
            summary["overlay"] = str(overlay)
        summary["summary_file"] = str(write_summary(summary, summary_file))
    return summary


def segment_boundaries(
    boundaries_url: str,
    output_url: str,
    stages: Stages,
    client: Any,
    progress: bool = True,
    fragments_url: str | None = None,
    tables: str | None = None,
) -> dict[str, Any]:
    """The segmentation sub-plan on a boundary map: fragments (``<output>_fragments`` unless
    given) -> region graph and merge scores (tables beside the container unless given) ->
    lookup tables -> one segmentation per threshold of ``stages.segment``. Every step resumes
    block by block from its done markers."""
    ctx = RunContext(
        stages,
        client,
        progress,
        {
            "boundaries": boundaries_url,
            "fragments": fragments_url or f"{output_url.rstrip('/')}_fragments",
            "tables": tables or tables_root(output_url),
            "segmentation": output_url,
        },
    )
    check_scoring(stages)
    check_plan_outputs(SEGMENTATION, ctx, [boundaries_url])
    records = run_steps(SEGMENTATION, ctx)
    return {
        "fragments": records["fragments"]["report"],
        "graph": records["graph"]["report"],
        "agglomerate": records["agglomerate"]["agglomeration"],
        "segmentations": records["relabel"]["segmentations"],
        "fragments_url": ctx.values["fragments"],
        "tables": ctx.values["tables"],
    }
