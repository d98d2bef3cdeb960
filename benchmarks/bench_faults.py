"""Faults during a whole workflow, on a real multi-process cluster (a scheduler and two worker
processes on 127.0.0.1): each run of a small synthetic workflow (predict, fragments, graph,
agglomerate, segment, relabel, evaluate) gets one SIGKILL at a random moment, of the client
(``petaseg run``, then run again) or of a worker (a new worker joins; the client carries on).

Reported: ``runs``; ``kills`` (of clients and of workers); ``resumed_identical``, the runs whose
boundary map and segmentations are byte-identical to an uninterrupted run (must equal ``runs``);
``blocks_recomputed_fraction``, the work done twice: output chunks and block tables that existed
at the kill and were written again by the resume, over all chunks and tables the workflow writes
(a block is marked done only after it is written, so what was written but not yet marked is
computed again; nothing marked is). Not a test: about 4 minutes on 2 cores
(``PETASEG_BENCH_FAULT_RUNS``, default 6).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from cluster.processes import ProcessCluster
from pipeline.io.volume import open_volume

ENTRY = "import sys; from workflows.cli.app import entry; sys.argv[0] = 'petaseg'; entry()"
RESULTS = ("boundaries", "segmentation_t0.5", "segmentation_t0.7")


def workflow_file(folder: Path, output: Path) -> Path:
    wf = {
        "name": "faults",
        "input": {"synthetic": {"shape": [32, 96, 96], "seed": 4}},
        "output": str(output),
        "model": "fib-boundary-v1",
        "stages": {
            "predict": {"block": [16, 48, 48], "patch": [16, 48, 48], "overlap": 0.25},
            "fragments": {"block": [16, 48, 48]},
            "segment": {"thresholds": [0.5, 0.7]},
            "correct": {"enabled": False},
            "export": {"enabled": False},
        },
    }
    path = folder / f"{output.stem}.yaml"
    path.write_text(yaml.safe_dump(wf))
    return path


def start(path: Path, address: str) -> subprocess.Popen:
    cmd = [sys.executable, "-c", ENTRY, "run", str(path), "--cluster", address, "--json"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(path: Path, address: str) -> None:
    proc = start(path, address)
    _, err = proc.communicate(timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"petaseg run {path} failed: {err[-2000:]}")


def digests(output: Path) -> dict[str, str]:
    return {
        name: hashlib.sha256(open_volume(str(output / name)).read().tobytes()).hexdigest()
        for name in RESULTS
    }


def written_files(output: Path) -> dict[str, int]:
    """Chunk files and block tables the run has written: path -> modification time (ns)."""
    roots = [output, Path(str(output) + ".tables")]
    files = {}
    for root in roots:
        for p in root.rglob("*"):
            is_chunk = "/c/" in p.as_posix() and p.is_file()
            if is_chunk or p.suffix == ".parquet":
                files[str(p)] = p.stat().st_mtime_ns
    return files


def one_run(folder: Path, pc: ProcessCluster, kill_client: bool, at: float, rng) -> dict:
    output = folder / f"run{rng.randrange(10**9)}.zarr"
    path = workflow_file(folder, output)
    client = start(path, pc.address)
    time.sleep(at)
    if client.poll() is not None:  # finished before the kill: nothing to measure
        return {"output": output, "rewritten": 0, "files": 0, "missed": True}
    if kill_client:
        client.send_signal(signal.SIGKILL)
        client.wait()
    else:
        alive = [w for w in pc.workers if w.poll() is None]
        pc.kill(alive[rng.randrange(len(alive))])
        pc.add_worker(f"w{rng.randrange(10**9)}")
    time.sleep(1.0)  # work in flight on the surviving workers settles
    before = written_files(output)
    if kill_client:
        finish(path, pc.address)
    else:
        _, err = client.communicate(timeout=900)
        if client.returncode != 0:
            raise RuntimeError(f"the run lost a worker and failed: {err[-2000:]}")
    after = written_files(output)
    again = sum(1 for f, t in before.items() if after.get(f, t) != t)
    return {"output": output, "rewritten": again, "files": len(after), "missed": False}


def reference(folder: Path, pc: ProcessCluster) -> tuple[dict[str, str], float]:
    output = folder / "reference.zarr"
    t0 = time.perf_counter()
    finish(workflow_file(folder, output), pc.address)
    return digests(output), time.perf_counter() - t0


def main(json_out: bool = False, runs: int | None = None, seed: int = 0) -> dict:
    runs = runs or int(os.environ.get("PETASEG_BENCH_FAULT_RUNS", "6"))
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="petaseg-bench-faults-"))
    with ProcessCluster(folder) as pc:
        for name in ("a", "b"):
            pc.add_worker(name)
        ref, seconds = reference(folder, pc)
        kills = {"client": 0, "worker": 0, "missed": 0}
        identical, rewritten, files = 0, 0, 0
        for i in range(runs):
            kill_client = i % 2 == 0
            at = rng.uniform(0.1, 0.6) * seconds
            r = one_run(folder, pc, kill_client, at, rng)
            victim = "missed" if r["missed"] else "client" if kill_client else "worker"
            kills[victim] += 1
            identical += int(digests(r["output"]) == ref)
            rewritten, files = rewritten + r["rewritten"], files + r["files"]
            if not json_out:
                print(f"run {i + 1}/{runs}: killed the {'client' if kill_client else 'worker'} "
                      f"at {at:.1f} s; {r['rewritten']} of {r['files']} outputs written again",
                      file=sys.stderr)  # fmt: skip
    return {
        "runs": runs,
        "kills": kills,
        "resumed_identical": identical,
        "blocks_recomputed_fraction": round(rewritten / files, 4) if files else 0.0,
        "reference_seconds": round(seconds, 1),
        "workers": 2,
    }


if __name__ == "__main__":
    print(json.dumps(main(json_out=True)))
