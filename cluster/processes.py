"""A Dask cluster of real ``dask scheduler`` / ``dask worker`` processes on 127.0.0.1 (each its
own process, TLS optional), for what must kill one: fault tests and the fault benchmark. Every
server listens on 127.0.0.1 only; the processes end with the ``with`` block."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]


def tls_args(tls: dict[str, str] | None) -> list[str]:
    if not tls:
        return []
    return ["--tls-ca-file", tls["ca"], "--tls-cert", tls["cert"], "--tls-key", tls["key"]]


class ProcessCluster:
    """``with ProcessCluster(folder, tls) as pc:`` a scheduler at ``pc.address``; ``add_worker``
    starts a worker process, ``kill`` SIGKILLs one."""

    def __init__(self, folder: Path, tls: dict[str, str] | None = None):
        self.folder, self.tls = Path(folder), tls
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.address = ""

    def __enter__(self) -> ProcessCluster:
        sched_file = self.folder / "scheduler.json"
        proto = ["--protocol", "tls"] if self.tls else []
        self.procs.append(
            subprocess.Popen(
                [
                    *DASK,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--dashboard-address",
                    "127.0.0.1:0",
                    "--scheduler-file",
                    str(sched_file),
                    *proto,
                    *tls_args(self.tls),
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(self.folder / "scheduler.log", "w"),
            )
        )
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)
        self.address = json.loads(sched_file.read_text())["address"]
        return self

    def add_worker(self, name: str, resources: str | None = None) -> subprocess.Popen:
        extra = ["--resources", resources] if resources else []
        p = subprocess.Popen(
            [
                *WORKER,
                self.address,
                "--name",
                name,
                "--nthreads",
                "1",
                "--no-nanny",
                "--host",
                "127.0.0.1",
                "--dashboard-address",
                "127.0.0.1:0",
                "--death-timeout",
                "30",
                *extra,
                *tls_args(self.tls),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / f"worker-{name}.log", "w"),
            cwd=os.getcwd(),
        )
        self.procs.append(p)
        self.workers.append(p)
        return p

    def kill(self, proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def __exit__(self, *exc) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
