"""``petaseg bench scale``: the cost curve of the segmentation pipeline from 1e7 to 1e9 voxels.

Input: the boundary map the shipped model ``fib-boundary-v1`` predicts on the FIB medulla volume of
``../shared/data`` (160x250x250, predicted once and cached under ``~/.cache/petaseg/bench_scale``),
mirror-tiled block by block (never whole in memory) to each size of
``PETASEG_BENCH_SCALE_SIZES`` (voxels, comma-separated; default ``1e7,1e8,1e9``), each side scaled
by the same factor. The ground truth is the FIB neuron ids tiled the same way, ids offset per tile
so they stay unique. Each size runs the workflow steps fragments, graph, agglomerate, segment
(threshold 0.5), relabel, evaluate and export (meshes and skeletons, defaults) on a LocalCluster of
2 single-threaded worker processes; per stage: seconds, voxels/s, peak RSS of the client (which
holds the scheduler) and of the largest worker (psutil, sampled every 0.2 s), and files written
(every output: fragments, tables, segmentation, pyramid, export). Beside it, igneous meshes and
skeletonises the same final segmentation with its sharded multi-resolution tasks
(``bench_export.igneous_tasks``; ``PETASEG_BENCH_SCALE_IGNEOUS=0`` leaves it out). An unmeasured
warm-up run at 1e6 voxels comes first (``PETASEG_BENCH_SCALE_WARMUP=0`` leaves it out).

``cost_growth``: seconds per voxel of all stages at the largest size over the smallest;
``client_rss_growth``: the client's peak RSS at the largest size over the smallest. A PNG of
seconds per voxel against volume size per stage goes to ``benchmarks/results/scale_cost.png``.
Wall times swing on a shared machine: the load average is reported with each size.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_export import FIB, count_files, igneous_tasks, igneous_volume
from benchmarks.correct_experiment import boundary_from_raw

REPO = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "petaseg" / "bench_scale"
PNG = REPO / "benchmarks" / "results" / "scale_cost.png"
STAGES = ("fragments", "graph", "agglomerate", "segment", "relabel", "evaluate", "export")
WRITE_BLOCK = (64, 256, 256)  # input tiling: whole chunks of CHUNKS
CHUNKS = (64, 128, 128)
TILES = np.uint64(1 << 12)  # tile numbering base per axis


def log(msg: str) -> None:
    print(f"[bench scale] {msg}", file=sys.stderr, flush=True)


def sizes() -> list[int]:
    """The volume sizes (voxels) of ``PETASEG_BENCH_SCALE_SIZES``, smallest first."""
    text = os.environ.get("PETASEG_BENCH_SCALE_SIZES", "1e7,1e8,1e9")
    return sorted(int(float(s)) for s in text.split(",") if s.strip())


def shape_for(voxels: int, base: tuple[int, ...]) -> tuple[int, int, int]:
    """``base`` with every side scaled by one factor so the volume holds about ``voxels``."""
    f = (voxels / float(np.prod(base))) ** (1 / 3)
    return tuple(max(16, round(b * f)) for b in base)


def cached_inputs() -> tuple[np.ndarray, np.ndarray, str]:
    """The FIB boundary map (uint8, 0-255) and neuron ids, and where the boundary map came from;
    the model's prediction is computed once and cached. ``PETASEG_BENCH_SCALE_MODEL=0``: the
    stand-in boundary map of ``benchmarks.inputs`` instead (no model, for quick checks)."""
    import h5py

    from benchmarks.inputs import STANDIN, fib_boundary
    from pipeline.errors import InputError

    if not FIB.exists():
        raise InputError(f"{FIB} is missing: bench scale needs ../shared/data beside the checkout")
    cache = CACHE / "fib_boundary_uint8.npy"
    with h5py.File(FIB, "r") as f:
        labels = f["volumes/labels/neuron_ids"][:].astype(np.uint64)
        if os.environ.get("PETASEG_BENCH_SCALE_MODEL", "1") == "0":
            return as_uint8(boundary_from_raw(f["volumes/raw"][:])), labels, STANDIN
        if cache.exists():
            return np.load(cache), labels, cache.with_suffix(".source").read_text()
        log(f"predicting the FIB boundary map once (cached in {CACHE})")
        boundary, source = fib_boundary(f["volumes/raw"][:])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cache, as_uint8(boundary))
    cache.with_suffix(".source").write_text(source)
    return as_uint8(boundary), labels, source


def as_uint8(boundary: np.ndarray) -> np.ndarray:
    return np.round(np.clip(boundary, 0, 1) * 255).astype(np.uint8)


def mirror_index(start: int, stop: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and tile numbers of positions ``start:stop`` of an axis tiled by mirroring
    a base of ``n``: even tiles as is, odd tiles reversed."""
    i = np.arange(start, stop)
    tile, j = np.divmod(i, n)
    return np.where(tile % 2, n - 1 - j, j), tile


def tiled_block(base: np.ndarray, slices: tuple[slice, ...], labels: bool) -> np.ndarray:
    """One block of ``base`` mirror-tiled without end; labels get ``tile * (max + 1)`` added,
    tiles numbered by their (z, y, x) tile index, so ids stay unique across tiles."""
    idx = [mirror_index(s.start, s.stop, n) for s, n in zip(slices, base.shape, strict=True)]
    block = base[np.ix_(*(i for i, _ in idx))]
    if not labels:
        return block
    tz, ty, tx = (t.astype(np.uint64) for _, t in idx)
    k = (tz[:, None, None] * TILES + ty[None, :, None]) * TILES + tx[None, None, :]
    top = np.uint64(base.max() + 1)
    return np.where(block > 0, block + k * top, np.uint64(0))


def block_slices(shape: tuple[int, ...], block: tuple[int, ...]):
    """The slices of ``shape`` cut into ``block``-sized pieces (the last ones smaller)."""
    for z in range(0, shape[0], block[0]):
        for y in range(0, shape[1], block[1]):
            for x in range(0, shape[2], block[2]):
                begin = (z, y, x)
                yield tuple(
                    slice(b, min(b + w, s)) for b, w, s in zip(begin, block, shape, strict=True)
                )


def roi_of(sl: tuple[slice, ...]):
    from pipeline.geometry import Roi

    return Roi(tuple(10 * s.start for s in sl), tuple(10 * (s.stop - s.start) for s in sl))


def write_tiled(url: str, base: np.ndarray, shape: tuple[int, ...], labels: bool) -> str:
    """Write ``base`` mirror-tiled to ``shape`` at ``url`` (a Zarr volume, 10 nm), block by block."""
    from pipeline.io.volume import create_volume

    vol = create_volume(
        url, shape, base.dtype, (10, 10, 10), chunks=CHUNKS, shards=None, labels=labels
    )
    for sl in block_slices(shape, WRITE_BLOCK):
        vol.write(roi_of(sl), tiled_block(base, sl, labels))
    return vol.url


class PeakRss:
    """Peak RSS of this process (the client, with the scheduler) and of its largest descendant
    process (a worker), sampled every ``interval`` seconds in a thread."""

    def __init__(self, interval: float = 0.2):
        import psutil

        self.me, self.interval = psutil.Process(), interval
        self.client = self.worker = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        import psutil

        self.client = max(self.client, self.me.memory_info().rss)
        for p in self.me.children(recursive=True):
            try:
                self.worker = max(self.worker, p.memory_info().rss)
            except psutil.Error:
                pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakRss:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def scale_workflow(folder: Path, boundaries: str, truth: str) -> Any:
    from workflows.api import load_workflow

    return load_workflow(
        {
            "name": "bench-scale",
            "input": {"boundaries": boundaries, "ground_truth": truth},
            "output": str(folder / "run.zarr"),
            "stages": {
                "segment": {"thresholds": [0.5]},
                "correct": {"enabled": False},
                "export": {"meshes": True, "skeletons": True},
            },
            "cluster": {"kind": "local", "workers": 2},
        }
    ).with_absolute_paths()


def run_stages(wf: Any, folder: Path, voxels: int, client: Any) -> tuple[dict[str, dict], str]:
    """Every step of ``wf`` on ``client``; per stage: seconds, voxels/s, peak RSS (MB), files
    written under ``folder``. Returns the figures and the final segmentation's URL."""
    from workflows.run import run_steps, workflow_context
    from workflows.steps import plan_of

    stages = {}
    ctx = workflow_context(wf, client, progress=False)
    for step in plan_of(wf):
        before = count_files(folder)
        t0 = time.perf_counter()
        with PeakRss() as rss:
            run_steps([step], ctx)
        secs = time.perf_counter() - t0
        if step.name not in STAGES:
            continue
        stages[step.name] = {
            "seconds": round(secs, 2),
            "voxels_per_s": round(voxels / secs),
            "client_peak_mb": round(rss.client / 2**20),
            "worker_peak_mb": round(rss.worker / 2**20),
            "files_written": count_files(folder) - before,
        }
        log(f"  {step.name}: {secs:.1f} s, {voxels / secs / 1e6:.2f} Mvox/s")
    return stages, ctx.values["final_segmentation"]


def igneous_side(segmentation: str, folder: Path) -> dict[str, Any]:
    """igneous meshing + skeletonising ``segmentation`` (copied blockwise to precomputed first,
    not timed) with its sharded multi-resolution tasks."""
    from pipeline.io.volume import open_volume

    seg = open_volume(segmentation)
    cv = igneous_volume(folder, tuple(seg.shape))
    for sl in block_slices(tuple(seg.shape), WRITE_BLOCK):
        data = seg.read(roi_of(sl)).astype(np.uint64, copy=False)
        cv[sl[2], sl[1], sl[0]] = np.ascontiguousarray(data.T)[..., None]
    with PeakRss() as rss:
        out = igneous_tasks(folder)
    out["client_peak_mb"] = round(rss.client / 2**20)
    out["worker_peak_mb"] = round(rss.worker / 2**20)
    return out


def run_size(
    voxels: int, base: np.ndarray, truth: np.ndarray, tmp: Path, client: Any, igneous: bool
) -> dict[str, Any]:
    """Inputs tiled to about ``voxels``, the workflow's stages on them, igneous beside."""
    shape = shape_for(voxels, base.shape)
    n = int(np.prod(shape))
    folder, inputs = tmp / f"run-{n}", tmp / f"inputs-{n}"
    log(f"{shape} = {n:.2e} voxels: tiling the inputs")
    t0 = time.perf_counter()
    b_url = write_tiled(str(inputs / "in.zarr" / "boundaries"), base, shape, labels=False)
    gt_url = write_tiled(str(inputs / "in.zarr" / "neuron_ids"), truth, shape, labels=True)
    inputs_s = time.perf_counter() - t0
    folder.mkdir(parents=True)
    stages, final = run_stages(scale_workflow(folder, b_url, gt_url), folder, n, client)
    total = sum(s["seconds"] for s in stages.values())
    row: dict[str, Any] = {
        "shape": list(shape),
        "voxels": n,
        "inputs_s": round(inputs_s, 1),
        "stages": stages,
        "total_s": round(total, 2),
        "total_voxels_per_s": round(n / total),
        "seconds_per_voxel": total / n,
        "client_peak_mb": max(s["client_peak_mb"] for s in stages.values()),
        "worker_peak_mb": max(s["worker_peak_mb"] for s in stages.values()),
        "files_written": count_files(folder),
        "load_average": round(os.getloadavg()[0], 1),
    }
    if igneous:
        ig = igneous_side(final, folder.parent / f"igneous-{n}")
        row["igneous"] = {
            "seconds": round(ig["seconds"], 2),
            "voxels_per_s": round(n / ig["seconds"]),
            "files_written": ig["files"],
            "client_peak_mb": ig["client_peak_mb"],
            "worker_peak_mb": ig["worker_peak_mb"],
        }
        row["export_vs_igneous"] = round(ig["seconds"] / stages["export"]["seconds"], 3)
        log(f"  igneous meshes + skeletons: {ig['seconds']:.1f} s")
    return row


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Seconds per voxel (ns) against volume size, one line per stage, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["voxels"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in STAGES:
        y = [r["stages"][name]["seconds"] / r["voxels"] * 1e9 for r in rows if name in r["stages"]]
        if len(y) == len(x):
            ax.plot(x, y, "o-", label=name)
    ax.plot(x, [r["seconds_per_voxel"] * 1e9 for r in rows], "ks-", lw=2, label="all stages")
    if all("igneous" in r for r in rows):
        y = [r["igneous"]["seconds"] / r["voxels"] * 1e9 for r in rows]
        ax.plot(x, y, "k--", label="igneous meshes+skeletons")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("volume size (voxels)")
    ax.set_ylabel("ns per voxel (wall, 2 workers)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_all(base: np.ndarray, truth: np.ndarray, tmp: Path) -> list[dict[str, Any]]:
    """Every size on one cluster of 2 workers, after the kernels are loaded in every process
    (``pipeline.stages.warm``) and one unmeasured warm-up run at 1e6 voxels (imports, numba)."""
    import shutil

    from cluster import ClusterSpec, open_client
    from pipeline.stages.warm import warm

    igneous = os.environ.get("PETASEG_BENCH_SCALE_IGNEOUS", "1") != "0" and not peer_missing()
    rows = []
    with open_client(ClusterSpec(kind="local", workers=2)) as client:
        warm()
        client.run(warm)
        if os.environ.get("PETASEG_BENCH_SCALE_WARMUP", "1") != "0":
            log("warm-up run at 1e6 voxels (not measured)")
            run_size(int(1e6), base, truth, tmp / "warm", client, igneous)
        for voxels in sizes():
            rows.append(run_size(voxels, base, truth, tmp / f"{voxels:.0e}", client, igneous))
            shutil.rmtree(tmp / f"{voxels:.0e}")
    return rows


def peer_missing() -> str | None:
    """Why igneous cannot run beside petaseg here (it is in the ``bench`` extra), or None."""
    import importlib.util

    if importlib.util.find_spec("igneous") is None:
        return "igneous is not installed: pip install -e '.[bench]'"
    return None


def main(json_out: bool = False) -> dict[str, Any]:
    import shutil

    base, truth, source = cached_inputs()
    tmp = Path(tempfile.mkdtemp(prefix="petaseg-bench-scale-", dir=os.environ.get("TMPDIR")))
    try:
        rows = run_all(base, truth, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    small, large = rows[0], rows[-1]
    png = Path(os.environ.get("PETASEG_BENCH_SCALE_PNG", PNG))
    plot(rows, png, f"petaseg on mirror-tiled FIB ({source}), 2 workers, {os.cpu_count()} cores")
    return {
        "boundary_map": f"{FIB.name}/volumes/raw -> {source}, mirror-tiled",
        "workers": 2,
        "cores": os.cpu_count(),
        "sizes": rows,
        "from_voxels": small["voxels"],
        "to_voxels": large["voxels"],
        "cost_growth": round(large["seconds_per_voxel"] / small["seconds_per_voxel"], 3),
        "cost_growth_per_stage": {
            name: round(
                large["stages"][name]["seconds"]
                / large["voxels"]
                / (small["stages"][name]["seconds"] / small["voxels"]),
                3,
            )
            for name in STAGES
            if name in small["stages"] and name in large["stages"]
        },
        "client_rss_growth": round(large["client_peak_mb"] / max(small["client_peak_mb"], 1), 3),
        "worker_rss_growth": round(large["worker_peak_mb"] / max(small["worker_peak_mb"], 1), 3),
        "png": str(png),
        "igneous_missing": peer_missing(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(main(json_out=True)))
