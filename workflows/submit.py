"""Submitting a workflow to a running scheduler so that the submitting machine can leave.

The workflow's driver runs as one Dask task that secedes from its worker's thread pool
(``worker_client``) and submits the block tasks itself. ``fire_and_forget`` keeps it alive after
the client disconnects; ``petaseg status OUTPUT`` follows it from the done markers, and
``petaseg submit --attach`` (the same workflow again) waits for its result.
"""

from __future__ import annotations

from typing import Any

from pipeline.done_markers import params_hash

from .schema import Workflow


def drive_workflow(config: dict[str, Any]) -> dict[str, Any]:
    """Runs on a worker: the whole workflow through a client of the same cluster."""
    from distributed import worker_client

    from .run import run_workflow

    wf = Workflow.model_validate(config)
    with worker_client() as client:
        return run_workflow(wf, client, progress=False)


def workflow_key(wf: Workflow) -> str:
    return f"petaseg-workflow-{wf.name}-{params_hash(wf.model_dump(mode='json'))}"


def submit_workflow(wf: Workflow, client, detach: bool) -> Any:
    """Submit (or re-attach to) the driver task; return its result, or its key when detached."""
    from distributed import Future, fire_and_forget

    key = workflow_key(wf)
    config = wf.model_dump(mode="json")
    existing = Future(key, client=client)
    fut = (
        existing
        if existing.status in ("pending", "finished")
        else client.submit(drive_workflow, config, key=key, pure=False, retries=0)
    )
    if detach:
        fire_and_forget(fut)
        return key
    return fut.result()
