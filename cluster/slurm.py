"""SLURM: GPU workers as batch jobs through dask-jobqueue, scaled adaptively.

Each job runs one Dask worker that advertises ``GPU=N`` so inference tasks land there, with
``--gres=gpu:N`` asking SLURM for the cards (``gpus=0``: CPU workers). A job that ends early
(cancelled, preempted, out of walltime) is submitted again by the adaptive loop.
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
    log_directory: str | None = None,
    interface: str | None = None,
    dashboard_address: str = ":8787",
    worker_options: list[str] | None = None,
    scheduler_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Arguments for ``dask_jobqueue.SLURMCluster`` (kept apart so they can be validated).

    ``env``: lines the job script runs before the worker starts (``export ...``, ``module load
    ...``); ``log_directory``: where the jobs' output files go (default: the submitting
    directory); ``interface``: the network interface the scheduler and the workers listen on
    (``ib0``; ``lo`` on one machine); ``dashboard_address``: the scheduler's dashboard;
    ``worker_options``: more ``dask worker`` options (``--dashboard-address 127.0.0.1:0``);
    ``scheduler_options`` replaces the scheduler's options altogether."""
    job_extra = [f"--gres=gpu:{gpus}"] if gpus else []
    worker_args = ["--resources", f"GPU={gpus}"] if gpus else []
    worker_args += list(worker_options or [])
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
        scheduler_options=scheduler_options or {"dashboard_address": dashboard_address},
    )
    optional = dict(
        python=python,
        local_directory=local_directory,
        log_directory=log_directory,
        interface=interface,
    )
    kwargs.update({k: v for k, v in optional.items() if v})
    return kwargs


def slurm_cluster(minimum_jobs: int = 0, maximum_jobs: int = 16, **kwargs: Any):
    """A SLURMCluster that scales between ``minimum_jobs`` and ``maximum_jobs`` with the load."""
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(**slurm_cluster_kwargs(**kwargs))
    cluster.adapt(minimum_jobs=minimum_jobs, maximum_jobs=maximum_jobs)
    return cluster


def slurm_job_script(minimum_jobs: int = 0, maximum_jobs: int = 16, **kwargs: Any) -> str:
    """The job script SLURM would run for one worker of ``slurm_cluster(**the same options)``
    (the job counts do not change it; no SLURM needed to generate it)."""
    from dask_jobqueue import SLURMCluster

    del minimum_jobs, maximum_jobs
    kwargs.setdefault("scheduler_options", {"dashboard_address": "127.0.0.1:0"})
    with SLURMCluster(**slurm_cluster_kwargs(**kwargs)) as cluster:
        return cluster.job_script()
