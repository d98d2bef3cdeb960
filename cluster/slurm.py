"""SLURM: GPU workers as batch jobs through dask-jobqueue, scaled adaptively.

Each job runs one Dask worker that advertises ``GPU=1`` so inference tasks land there, with
``--gres=gpu:N`` asking SLURM for the card.
"""

from __future__ import annotations

from typing import Any


def slurm_cluster_kwargs(
    queue: str | None = None,
    account: str | None = None,
    cores: int = 8,
    memory: str = "64GB",
    gpus: int = 1,
    walltime: str = "04:00:00",
    python: str | None = None,
    env: list[str] | None = None,
    local_directory: str | None = None,
    scheduler_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Arguments for ``dask_jobqueue.SLURMCluster`` (kept apart so they can be validated)."""
    job_extra = [f"--gres=gpu:{gpus}"] if gpus else []
    worker_args = ["--resources", f"GPU={gpus}"] if gpus else []
    kwargs: dict[str, Any] = dict(
        queue=queue,
        account=account,
        cores=cores,
        processes=1,
        memory=memory,
        walltime=walltime,
        job_extra_directives=job_extra,
        worker_extra_args=worker_args,
        job_script_prologue=list(env or []),
        scheduler_options=scheduler_options or {"dashboard_address": ":8787"},
    )
    if python:
        kwargs["python"] = python
    if local_directory:
        kwargs["local_directory"] = local_directory
    return kwargs


def slurm_cluster(minimum_jobs: int = 0, maximum_jobs: int = 16, **kwargs: Any):
    """A SLURMCluster that scales between ``minimum_jobs`` and ``maximum_jobs`` with the load."""
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(**slurm_cluster_kwargs(**kwargs))
    cluster.adapt(minimum_jobs=minimum_jobs, maximum_jobs=maximum_jobs)
    return cluster


def slurm_job_script(**kwargs: Any) -> str:
    """The job script SLURM would run for one worker (no SLURM needed to generate it)."""
    from dask_jobqueue import SLURMCluster

    kwargs.setdefault("scheduler_options", {"dashboard_address": ":0"})
    with SLURMCluster(**slurm_cluster_kwargs(**kwargs)) as cluster:
        return cluster.job_script()
