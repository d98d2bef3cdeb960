"""Submitting a workflow to a running scheduler so that the submitting machine can leave.

The workflow's driver runs as one Dask task that secedes from its worker's thread pool
(``worker_client``) and submits the block tasks itself. ``fire_and_forget`` keeps it alive after
the client disconnects; ``petaseg status OUTPUT`` follows it from the done markers, and submitting
the same workflow again without ``--detach`` attaches to the running driver and waits for its
result (a driver that already finished is simply run again: every stage is then skipped).
"""

from __future__ import annotations

from typing import Any

from pipeline.runner.done import params_hash
from workflows.schema import Workflow


def drive_workflow(config: dict[str, Any]) -> dict[str, Any]:
    """Runs on a worker: the whole workflow through a client of the same cluster."""
    from distributed import worker_client

    from workflows.run import run_workflow

    wf = Workflow.model_validate(config)
    with worker_client() as client:
        return run_workflow(wf, client, progress=False)


def workflow_key(wf: Workflow) -> str:
    return f"petaseg-workflow-{wf.name}-{params_hash(wf.model_dump(mode='json'))}"


def driver_state(client, key: str) -> str | None:
    """The scheduler's state of the driver task ``key`` (None when it does not know it)."""

    def state(dask_scheduler, key=key):
        ts = dask_scheduler.tasks.get(key)
        return None if ts is None else ts.state

    return client.run_on_scheduler(state)


def submit_workflow(wf: Workflow, client, detach: bool) -> Any:
    """Submit (or re-attach to) the driver task; return its result, or its key when detached."""
    from distributed import fire_and_forget

    key = workflow_key(wf)
    config = wf.model_dump(mode="json")
    # the same key again: the scheduler attaches this client to a driver it still holds rather
    # than starting a second one (a bare Future(key) would not tell it this client wants it)
    running = driver_state(client, key) in ("waiting", "queued", "processing", "no-worker")
    fut = client.submit(drive_workflow, config, key=key, pure=False, retries=0)
    if detach:
        fire_and_forget(fut)
        return f"{key} ({'already running: attached' if running else 'started'})"
    return fut.result()
