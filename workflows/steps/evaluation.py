"""The evaluate step: VI split/merge and adapted Rand error of every segmentation against the
ground truth, blockwise on the cluster (block tables summed on the workers)."""

from __future__ import annotations

from typing import Any

from pipeline.evaluate import evaluate_volumes
from workflows.steps.step import RunContext, Step


def evaluate_step(ctx: RunContext) -> dict[str, Any]:
    truth = ctx.values["ground_truth"]
    return {
        "metrics": [
            {
                "threshold": s["threshold"],
                "corrected": s["corrected"],
                **evaluate_volumes(s["segmentation"], truth, client=ctx.client),
            }
            for s in ctx.values["segmentations"]
        ]
    }


def evaluate_config(ctx: RunContext) -> dict[str, Any]:
    return {"gt": ctx.values["ground_truth"], "segmentations": ctx.values["segmentations"]}


EVALUATE = Step(
    "evaluate",
    ("ground_truth", "segmentations"),
    ("metrics",),
    evaluate_step,
    config=evaluate_config,
)
