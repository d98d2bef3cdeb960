"""The declared steps of a workflow, in order: each names what it needs, what it provides, the
configuration it hashes and the function that runs it. ``plan_of(workflow)`` picks the steps a
workflow runs; ``SEGMENTATION`` is the sub-plan ``petaseg segment`` runs."""

from __future__ import annotations

from workflows.schema import Workflow
from workflows.steps.correction import CORRECT, correction_model, fresh_edit_log
from workflows.steps.evaluation import EVALUATE
from workflows.steps.export import EXPORT
from workflows.steps.inputs import INPUT, check_input
from workflows.steps.predict import PREDICT, require_gpu_workers
from workflows.steps.segmentation import AGGLOMERATE, FRAGMENTS, GRAPH, RELABEL, SEGMENT
from workflows.steps.step import RunContext, Step

STEPS = (INPUT, PREDICT, FRAGMENTS, GRAPH, AGGLOMERATE, SEGMENT, CORRECT, RELABEL, EVALUATE, EXPORT)
SEGMENTATION = (FRAGMENTS, GRAPH, AGGLOMERATE, SEGMENT, RELABEL)


def plan_of(wf: Workflow) -> list[Step]:
    """The steps ``wf`` runs, in order."""
    skip = set()
    if wf.input.boundaries is not None:
        skip.add("predict")
    if not wf.stages.correct.enabled:
        skip.add("correct")
    if not (wf.input.ground_truth or wf.input.synthetic):
        skip.add("evaluate")
    if not wf.stages.export.enabled:
        skip.add("export")
    return [s for s in STEPS if s.name not in skip]


__all__ = [
    "SEGMENTATION",
    "STEPS",
    "RunContext",
    "Step",
    "check_input",
    "correction_model",
    "fresh_edit_log",
    "plan_of",
    "require_gpu_workers",
]
