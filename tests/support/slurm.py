"""A one-node SLURM cluster on this machine, for tests: Debian's ``munged``, ``slurmctld`` and
``slurmd`` run as the test's own processes, configured in a folder of their own (``slurm.conf``,
munge key and socket, state, spool and logs), and stopped when the ``with`` block ends.

Every client command must see ``SLURM_CONF`` (``LocalSlurm.env``); the munge socket reaches
SLURM's auth and cred plugins through ``AuthInfo=socket=...`` in ``slurm.conf`` (libmunge reads no
environment variable; the ``munge``/``unmunge`` tools take ``--socket``). The daemons run as root
(``SlurmUser=root``), as CI does. ``slurmctld`` and ``slurmd`` listen on the loopback address the
host name resolves to (``CommunicationParameters=NoCtldInAddrAny,NoInAddrAny``); where it resolves
to another address they cannot be told so and listen on every interface.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

SBIN = "/usr/sbin:/sbin"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sinfo", "sbatch", "squeue", "scancel")
NODE = "localhost"


class SlurmUnavailable(RuntimeError):
    """The daemons are missing or did not start; the message says why (with their log)."""


def executable(name: str) -> str:
    """The path of a SLURM or munge program, or SlurmUnavailable naming the package."""
    path = shutil.which(name, path=f"{os.environ.get('PATH', '')}:{SBIN}")
    if path is None:
        raise SlurmUnavailable(f"{name} is not installed (apt-get install slurm-wlm munge)")
    return path


def free_ports(host: str, count: int) -> list[int]:
    """``count`` distinct ports nothing listens on now."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]


def loopback_address() -> tuple[str, bool]:
    """The address the daemons use and whether they can be told to listen on it only: the
    address the host name resolves to when that is a loopback one (slurm binds to it), else
    127.0.0.1 (and they listen on every interface)."""
    try:
        resolved = socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1", False
    if ipaddress.ip_address(resolved).is_loopback:
        return resolved, True
    return "127.0.0.1", False


def gpu_devices() -> list[str]:
    return sorted(str(p) for p in Path("/dev").glob("nvidia[0-9]*"))


def slurm_conf(folder: Path, address: str, loopback_only: bool, ports: tuple[int, int]) -> str:
    """A one-node ``slurm.conf``: 2 CPUs, consumable cores, no accounting, no cgroups."""
    gpus = gpu_devices()
    lines = [
        "ClusterName=petaseg-test",
        f"SlurmctldHost={NODE}({address})",
        f"SlurmctldPort={ports[0]}",
        f"SlurmdPort={ports[1]}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={folder / 'munge' / 'munge.socket'}",
        f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MpiDefault=none",
        "MailProg=/bin/true",
        "ReturnToService=2",
        "KillWait=5",
        # the node is what this file says (2 CPUs, 8 GB) whatever the machine has
        "SlurmdParameters=config_overrides",
    ]
    if loopback_only:
        lines.append("CommunicationParameters=NoCtldInAddrAny,NoInAddrAny")
    gres = ""
    if gpus:
        lines.append("GresTypes=gpu")
        gres = f" Gres=gpu:{len(gpus)}"
        (folder / "gres.conf").write_text("".join(f"Name=gpu File={d}\n" for d in gpus))
    lines += [
        f"NodeName={NODE} NodeAddr={address} CPUs=2 RealMemory=8192{gres} State=UNKNOWN",
        f"PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
    ]
    return "\n".join(lines) + "\n"


class LocalSlurm:
    """``with LocalSlurm(folder) as slurm:`` a SLURM cluster of one idle node; ``slurm.env``
    holds what client commands need, ``slurm.command(...)`` runs one, ``slurm.jobs()`` lists
    the queue. Raises SlurmUnavailable when the daemons are missing or do not start."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.conf = self.folder / "slurm.conf"
        self.socket = self.folder / "munge" / "munge.socket"
        self.env = {"SLURM_CONF": str(self.conf)}
        self.procs: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> LocalSlurm:
        programs = {name: executable(name) for name in DAEMONS + CLIENTS}
        if os.geteuid() != 0:
            raise SlurmUnavailable("the test cluster's daemons run as root (SlurmdUser=root)")
        try:
            self._write_files()
            self._start("munged", self._munged_args(programs["munged"]))
            self._wait(self.socket.exists, "munged made no socket")
            self._start("slurmctld", [programs["slurmctld"], "-D", "-c"])
            self._start("slurmd", [programs["slurmd"], "-D", "-N", NODE])
            self._wait(lambda: self.node_state() == "idle", "the node did not become idle")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def command(self, *args: str) -> str:
        """Run a SLURM client command against this cluster; its standard output."""
        done = subprocess.run(
            args, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def node_state(self) -> str:
        try:
            return self.command("sinfo", "-h", "-N", "-o", "%T").strip()
        except (RuntimeError, subprocess.TimeoutExpired):
            return ""

    def jobs(self) -> dict[str, str]:
        """Job id -> state of every job in the queue (pending, running, completing)."""
        out = self.command("squeue", "-h", "-o", "%i %T")
        return dict(line.split() for line in out.splitlines() if line.strip())

    def stop(self) -> None:
        """Cancel every job, then stop slurmd, slurmctld and munged (in that order)."""
        controller = self.procs.get("slurmctld")
        if controller is not None and controller.poll() is None:
            try:
                self.command("scancel", "--user", "root")
                self._wait(lambda: not self.jobs(), "jobs still running", timeout=30)
            except (RuntimeError, SlurmUnavailable, subprocess.TimeoutExpired):
                pass
        for p in reversed(self.procs.values()):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs.values()):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()

    def logs(self) -> str:
        tails = []
        for log in sorted((self.folder / "log").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-15:]
            tails.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(tails)

    def _write_files(self) -> None:
        for sub in ("state", "spool", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        (self.folder / "munge").mkdir(mode=0o700, exist_ok=True)
        key = self.folder / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        address, loopback_only = loopback_address()
        ports = free_ports(address, 2)
        self.conf.write_text(slurm_conf(self.folder, address, loopback_only, (ports[0], ports[1])))

    def _munged_args(self, munged: str) -> list[str]:
        m = self.folder / "munge"
        return [
            munged,
            "--foreground",
            "--force",  # test folders are not world-executable; only root uses this socket
            f"--socket={self.socket}",
            f"--key-file={m / 'munge.key'}",
            f"--pid-file={m / 'munged.pid'}",
            f"--seed-file={m / 'munged.seed'}",
        ]

    def _start(self, name: str, args: list[str]) -> None:
        log = open(self.folder / "log" / f"{name}.log", "ab")
        proc = subprocess.Popen(
            args,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
        )
        log.close()
        self.procs[name] = proc

    def _wait(self, ready: Callable[[], bool], problem: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            dead = [name for name, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"after {timeout:.0f} s"
                raise SlurmUnavailable(f"{problem} ({why})\n{self.logs()}")
            if ready():
                return
            time.sleep(0.2)


def unavailable(reason: str) -> None:
    """No SLURM cluster: a failure in CI (``PETASEG_CI=1``, where ``.ci/run`` installs it), a
    skip with the reason elsewhere."""
    import pytest

    if os.environ.get("PETASEG_CI"):
        pytest.fail(f"SLURM is required in CI: {reason}")
    pytest.skip(reason)


def job_id() -> str | None:
    """Run on a worker (``client.run(job_id)``): the SLURM job it runs in."""
    return os.environ.get("SLURM_JOB_ID")
