"""Faults during prediction: the client (``petaseg predict``) and a worker are SIGKILLed mid-run
on a real multi-process cluster; the same command run again finishes only the missing blocks and
the output is byte-identical to an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from cluster.processes import ProcessCluster
from models.checkpoint import save_checkpoint
from pipeline.io.volume import open_volume
from pipeline.runner.done import markers_root
from tests.support.predict import tiny_net, write_input

ENTRY = "import sys; from workflows.cli.app import entry; sys.argv[0] = 'petaseg'; entry()"


def predict_command(ckpt: Path, raw: str, out: str, address: str) -> list[str]:
    options = ["--block", "16,32,32", "--patch", "16,16,16", "--chunks", "16,16,16"]
    options += ["--dtype", "float32", "--device", "cpu", "--cluster", address, "--json"]
    return [sys.executable, "-c", ENTRY, "predict", "--model", str(ckpt)] + [
        "--input",
        raw,
        "--output",
        out,
        *options,
    ]


def marked_blocks(out: str) -> int:
    """Blocks the done markers beside ``out`` record as written."""
    groups = [p for p in Path(markers_root(out)).rglob("groups/*/*") if p.is_file()]
    return sum(int(np.unpackbits(np.frombuffer(g.read_bytes(), np.uint8)).sum()) for g in groups)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_client_and_worker_killed_mid_predict_resume_byte_identical(tmp_path):
    rng = np.random.default_rng(11)
    raw = write_input(
        str(tmp_path / "in.zarr" / "raw"), rng.integers(0, 255, (64, 96, 96), np.uint8)
    )
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, tiny_net(5))
    total = 4 * 3 * 3  # blocks of 16 x 32 x 32
    ref, out = str(tmp_path / "ref.zarr" / "p"), str(tmp_path / "out.zarr" / "p")
    with ProcessCluster(tmp_path) as pc:
        pc.add_worker("a")
        victim = pc.add_worker("b")
        done = subprocess.run(
            predict_command(ckpt, raw, ref, pc.address), capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        client = subprocess.Popen(
            predict_command(ckpt, raw, out, pc.address),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: marked_blocks(out) >= 2, 300, "the first blocks")
        client.send_signal(signal.SIGKILL)
        pc.kill(victim)
        client.wait()
        interrupted = marked_blocks(out)
        assert 2 <= interrupted < total, interrupted  # killed mid-run
        pc.add_worker("c")
        again = subprocess.run(
            predict_command(ckpt, raw, out, pc.address), capture_output=True, text=True, timeout=300
        )
        assert again.returncode == 0, again.stderr
        report = json.loads(again.stdout.strip().splitlines()[-1])
        assert report["blocks_skipped"] >= interrupted
        assert report["blocks_run"] + report["blocks_skipped"] == total
    a, b = open_volume(ref).read(), open_volume(out).read()
    assert a.dtype == b.dtype == np.float32
    assert a.tobytes() == b.tobytes()  # byte-identical to the uninterrupted run
    assert marked_blocks(out) == total
