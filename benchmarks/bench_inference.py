"""Inference: petaseg's blockwise predict stage vs MONAI ``sliding_window_inference``, side by
side in one run, same network and weights, same patch, same overlap, Gaussian blending, on CPU.

Data: ../shared/data/fib_medulla_flyem/fib_medulla_unlabeled_sample1.h5 (``volumes/raw``, 250^3,
10 nm). Network: the shipped ``fib-boundary-v1`` when models/zoo has it, else a randomly
initialised U-Net of the same architecture (the result says which).

Each contender runs in a fresh subprocess per measurement, so its peak memory is its own:
``*_peak_mb`` is the peak RSS (``getrusage`` high-water mark) minus the RSS after imports,
model build and client start, i.e. what the inference itself needed (input, output, buffers,
activations). MONAI gets the whole volume as a normalised float32 tensor (its interface) and runs
under ``torch.inference_mode``; petaseg reads the HDF5 and writes float32 Zarr through the
blockwise runner (an in-process Dask worker; one block covers the volume). Both use the same torch
thread count and the same patch batch size. ``max_abs_diff`` compares the two outputs.

``scaling_2_workers``: throughput of a 2-worker LocalCluster (one thread and one torch thread
each) over a 1-worker one, on the same blocks (128^3, z 0..128 of the volume to bound the time),
with the workers warmed first (imports, model, first forward pass: start-up, not throughput).

``petaseg_busy_fraction`` (and ``busy_fraction_*`` in the scaling detail): the predict stage's
time in the network over the workers' time on the run (``pipeline.inference.timing``).

GPU section (when CUDA is there; ``"gpu": null`` and the reason otherwise): the predict stage on
one ``GPU=1`` worker, bf16 autocast, 128^3 blocks read ahead: ``gpu_vps``, ``gpu_busy_fraction``,
``gpu_peak_mb`` (torch's peak allocated), ``gpu_peak_fraction`` (network FLOPs of every patch
computed per wall second over the GPU's measured bf16 matmul rate; see benchmarks/gpu_figures).

Set ``PETASEG_BENCH_INFERENCE_CROP=Z,Y,X`` for a quick run on a corner crop, and
``PETASEG_BENCH_GPU_ONLY=1`` to run only the GPU section.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.gpu_figures import gpu_only, gpu_wanted

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fib_medulla_flyem" / "fib_medulla_unlabeled_sample1.h5"
MODEL = "fib-boundary-v1"
PATCH = (64, 64, 64)
BATCH = 2
THREADS = 2
OVERLAPS = (0.5, 0.25)


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------------------------------------
# one measurement per subprocess


def _load_net(model: str):
    from models.zoo import load_model

    return load_model(model).eval()


def _warm_worker(model: str, patch: list[int], batch: int) -> bool:
    """Start-up a worker pays once (torch import, model load and batch-norm folding, the first
    forward pass's kernel set-up), paid before the scaling clock starts: the scaling figure is
    about throughput, not about how many processes start at once."""
    import torch

    from pipeline.inference.engine import EngineConfig
    from pipeline.inference.network import ModelSource, set_torch_threads

    set_torch_threads()
    cfg = EngineConfig(patch=tuple(patch))  # the predict stage's layout and folding defaults
    net = ModelSource.resolve(model).prepared(torch.device("cpu"), cfg.channels_last, cfg.fuse_bn)
    with torch.inference_mode():
        net(torch.zeros(batch, 1, *patch).to(memory_format=torch.channels_last_3d))
    return True


def _run_monai(args: dict) -> dict:
    import h5py
    import numpy as np
    import torch
    from monai.inferers import sliding_window_inference

    torch.set_num_threads(args["threads"])
    net = _load_net(args["model"])
    spec = net.spec
    crop = tuple(slice(0, c) for c in args["crop"]) if args["crop"] else ...
    base = _rss_mb()
    t0 = time.perf_counter()
    with h5py.File(args["h5"], "r") as f:
        raw = f["volumes/raw"][crop]
    mean, std = spec.normalization["mean"], spec.normalization["std"]
    x = torch.from_numpy(raw).float().sub_(mean).div_(std)[None, None]
    del raw
    with torch.inference_mode():
        y = sliding_window_inference(
            x,
            args["patch"],
            args["batch"],
            lambda t: torch.sigmoid(net(t)),
            overlap=args["overlap"],
            mode="gaussian",
            sigma_scale=0.125,
        )
    secs = time.perf_counter() - t0
    peak = _peak_mb() - base
    np.save(args["out"], y[0, 0].numpy())
    return {"seconds": secs, "peak_mb": peak, "voxels": int(np.prod(y.shape[2:]))}


def _run_petaseg(args: dict) -> dict:
    import numpy as np
    import torch
    from distributed import Client, LocalCluster

    from pipeline.io.volume import open_volume
    from pipeline.stages.predict import predict

    torch.set_num_threads(args["threads"])
    workers = args.get("workers", 1)
    processes = workers > 1 or args.get("processes", False)
    tpw = 1 if processes else args["threads"]
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=tpw,
            processes=processes,
            dashboard_address=None,
        ) as lc,
        Client(lc) as client,
    ):
        _load_net(args["model"])  # the client loads the model to plan; count it in the base
        if args.get("warm"):
            client.run(_warm_worker, args["model"], args["patch"], args["batch"])
        base = _rss_mb()
        t0 = time.perf_counter()
        report = predict(
            args["model"],
            args["input"],
            args["out"],
            client=client,
            progress=False,
            block=args["block"],
            patch=args["patch"],
            overlap=args["overlap"],
            dtype="float32",
            batch_size=args["batch"],
            device="cpu",
        )
        secs = time.perf_counter() - t0
        peak = _peak_mb() - base
    vol = open_volume(args["out"])
    return {
        "seconds": secs,
        "peak_mb": peak if not processes else None,
        "voxels": int(np.prod(vol.shape)),
        "blocks": report.blocks_run,
        "busy_fraction": report.timing.get("busy_fraction"),
    }


def _run_layout(args: dict) -> dict:
    """Forward-pass throughput of one patch batch, channels-last 3D vs contiguous (NCDHW),
    interleaved repeats, best of each: why the engine runs channels-last on CPU."""
    import torch

    torch.set_num_threads(args["threads"])
    net = _load_net(args["model"])
    x = torch.randn(args["batch"], 1, *args["patch"])
    layouts = {"contiguous": torch.contiguous_format, "channels_last_3d": torch.channels_last_3d}
    best = dict.fromkeys(layouts, 0.0)
    with torch.inference_mode():
        for _ in range(3):
            for name, fmt in layouts.items():
                m = net.to(memory_format=fmt)
                xx = x.contiguous(memory_format=fmt)
                m(xx)
                t0, n = time.perf_counter(), 0
                while time.perf_counter() - t0 < 3:
                    m(xx)
                    n += 1
                vps = n * x.numel() / (time.perf_counter() - t0)
                best[name] = max(best[name], vps)
    return {**best, "flops_per_voxel": _flops_per_voxel(net, args["patch"])}


def _flops_per_voxel(net, patch) -> float:
    """Network FLOPs (2 per multiply-add) per output voxel of one patch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, 1, *patch, device=next(net.parameters()).device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(x)
    return counter.get_total_flops() / x.numel()


def _run_gpu(args: dict) -> dict:
    """The predict stage on one GPU worker (``GPU=1``, device auto, bf16 autocast, reading
    ahead): volume voxels/s, the network's busy fraction, peak GPU memory, and achieved FLOP/s
    (network FLOPs of every patch computed, over the run's wall time) as a fraction of the
    GPU's measured bf16 matmul rate."""
    import torch
    from distributed import Client, LocalCluster

    from benchmarks.gpu_figures import bf16_matmul_flops, flops_per_voxel, patches_computed
    from pipeline.io.volume import open_volume
    from pipeline.stages.predict import predict

    matmul_rate = bf16_matmul_flops("cuda")
    opts = dict(patch=args["patch"], overlap=0.5, batch_size=args["batch"], block=args["block"])
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
            resources={"GPU": 1},
        ) as lc,
        Client(lc) as client,
    ):  # fmt: skip
        # warm-up (model load, cuDNN autotuning) on a crop, then the measured run
        predict(args["model"], args["warm_input"], args["warm_out"], client=client,
                progress=False, **opts)  # fmt: skip
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        report = predict(
            args["model"], args["input"], args["out"], client=client, progress=False, **opts
        )
        secs = time.perf_counter() - t0
    shape = open_volume(args["input"]).shape
    patches = patches_computed(shape, args["patch"], 0.5, args["block"])
    fpv = flops_per_voxel(_load_net(args["model"]).to("cuda"), args["patch"])
    flops = patches * math.prod(args["patch"]) * fpv
    t = report.timing
    return {
        "gpu_vps": math.prod(shape) / secs,
        "gpu_peak_fraction": flops / secs / matmul_rate,
        "gpu_peak_fraction_in_network": flops / t["model_seconds"] / matmul_rate,
        "gpu_busy_fraction": t["busy_fraction"],
        "gpu_input_wait_seconds": t["input_wait_seconds"],
        "gpu_peak_mb": t["gpu_peak_mb"],
        "gpu_bf16_matmul_tflops": matmul_rate / 1e12,
        "gpu_achieved_tflops": flops / secs / 1e12,
        "gpu_devices": t["devices"],
        "gpu_name": torch.cuda.get_device_name(),
        "gpu_batch_size": args["batch"],
        "gpu_block": args["block"],
        "gpu_seconds": secs,
        "gpu_flops_per_voxel": fpv,
    }


def _subprocess(kind: str, args: dict, timeout: float = 3600) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_inference", kind, json.dumps(args)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args["threads"])}
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------


def _model_for_bench(tmp: str) -> tuple[str, str]:
    """The shipped model's name, or a stand-in checkpoint of the same architecture."""
    from models.zoo import ZOO

    if (ZOO / f"{MODEL}.pt").is_file():
        return MODEL, f"shipped {MODEL}"
    import torch
    import yaml

    from models.architectures import build_model
    from models.checkpoint import save_checkpoint

    cfg = yaml.safe_load((ZOO / f"{MODEL}.yaml").read_text())["model"]
    torch.manual_seed(0)
    net = build_model("unet", cfg).eval()
    net.set_normalization(128.0, 40.0)
    path = os.path.join(tmp, "standin.pt")
    save_checkpoint(path, net)
    return path, (
        f"stand-in: randomly initialised U-Net with {MODEL}'s architecture ({cfg['widths']}), "
        "the shipped weights were not there yet"
    )


def _input(tmp: str, crop: tuple[int, ...] | None) -> str:
    if not crop:
        return f"{DATA}/volumes/raw"
    import h5py

    from pipeline.io.volume import create_volume

    with h5py.File(DATA, "r") as f:
        raw = f["volumes/raw"][tuple(slice(0, c) for c in crop)]
    url = os.path.join(tmp, "in.zarr", "raw")
    vol = create_volume(url, raw.shape, raw.dtype, (10, 10, 10), chunks=(64, 64, 64))
    vol.write(vol.roi, raw)
    return url


def main(json_out: bool = False) -> dict:
    if not DATA.exists():
        return {"skipped": f"real data not available: {DATA}"}
    crop_env = os.environ.get("PETASEG_BENCH_INFERENCE_CROP")
    crop = tuple(int(v) for v in crop_env.split(",")) if crop_env else None
    result: dict = {
        "data": str(DATA.relative_to(REPO.parent)) + "/volumes/raw",
        "crop": list(crop) if crop else None,
        "device": "cpu",
        "threads": THREADS,
        "patch": list(PATCH),
        "batch_size": BATCH,
        "blending": "gaussian, sigma_scale 0.125",
        "memory_method": "peak RSS (getrusage ru_maxrss) minus RSS after imports/model/client, "
        "one fresh subprocess per run",
    }
    with tempfile.TemporaryDirectory() as tmp:
        model, model_note = _model_for_bench(tmp)
        result["model"] = model_note
        url = _input(tmp, crop)
        shape = crop or (250, 250, 250)
        if not gpu_only():
            result.update(_cpu_sections(tmp, model, url, crop, shape))
        result.update(_gpu_section(tmp, model, url))
    if not json_out:
        print(json.dumps(result, indent=1))
    return result


def _cpu_sections(tmp: str, model: str, url: str, crop, shape) -> dict:
    """Versus MONAI at each overlap, memory layouts, and 2-worker scaling, on the CPU."""
    result: dict = {}
    runs = [_versus_monai(tmp, model, url, crop, shape, overlap) for overlap in OVERLAPS]
    for key in MAIN_RUN_KEYS:
        result[key] = runs[0][key]
    result["runs"] = runs
    result.update(_layouts(model))
    result.update(_scaling(tmp, model, url, crop, shape))
    return result


def _gpu_section(tmp: str, model: str, url: str) -> dict:
    """The predict stage on a GPU worker (``_run_gpu``), or ``gpu: null`` and why not."""
    run, why = gpu_wanted()
    if not run:
        return {"gpu": None, "gpu_reason": why}
    gpu_args = {
        "model": model,
        "patch": list(PATCH),
        "batch": 8,
        "threads": THREADS,
        "block": [128, 128, 128],
        "input": url,
        "out": os.path.join(tmp, "gpu.zarr", "pred"),
        "warm_input": _input(os.path.join(tmp, "warm"), (64, 128, 128)),
        "warm_out": os.path.join(tmp, "gpu-warm.zarr", "pred"),
    }
    gpu = _subprocess("gpu", gpu_args)
    return {"gpu": gpu, **{k: v for k, v in gpu.items() if k.startswith("gpu_")}}


MAIN_RUN_KEYS = (
    "petaseg_vps",
    "monai_vps",
    "ratio_vs_monai",
    "petaseg_peak_mb",
    "monai_peak_mb",
    "max_abs_diff",
    "petaseg_busy_fraction",
)


def _versus_monai(
    tmp: str,
    model: str,
    url: str,
    crop: tuple[int, ...] | None,
    shape: tuple[int, ...],
    overlap: float,
) -> dict:
    """petaseg and MONAI on the same input at one overlap: speed, memory, and how far apart
    their outputs are."""
    import numpy as np

    from pipeline.io.volume import open_volume

    block = tuple(-(-s // 64) * 64 for s in shape)  # one block covers the volume
    common = {
        "model": model,
        "patch": list(PATCH),
        "batch": BATCH,
        "threads": THREADS,
        "overlap": overlap,
    }
    pout = os.path.join(tmp, f"p{overlap}.zarr", "pred")
    mout = os.path.join(tmp, f"m{overlap}.npy")
    p = _subprocess("petaseg", {**common, "input": url, "out": pout, "block": list(block)})
    m = _subprocess("monai", {**common, "h5": str(DATA), "crop": list(crop or ()), "out": mout})
    ours, theirs = open_volume(pout).read(), np.load(mout)
    return {
        "overlap": overlap,
        "petaseg_vps": p["voxels"] / p["seconds"],
        "monai_vps": m["voxels"] / m["seconds"],
        "ratio_vs_monai": m["seconds"] / p["seconds"],
        "petaseg_seconds": p["seconds"],
        "monai_seconds": m["seconds"],
        "petaseg_peak_mb": p["peak_mb"],
        "monai_peak_mb": m["peak_mb"],
        "max_abs_diff": float(np.abs(ours - theirs).max()),
        "petaseg_busy_fraction": p["busy_fraction"],
    }


def _layouts(model: str) -> dict:
    """Forward-pass throughput by memory layout, and the network's FLOPs per voxel."""
    layout = _subprocess(
        "layout", {"model": model, "patch": list(PATCH), "batch": BATCH, "threads": THREADS}
    )
    return {
        "forward_vps_by_layout": layout,
        "channels_last_speedup": layout["channels_last_3d"] / layout["contiguous"],
        "flops_per_voxel": layout["flops_per_voxel"],
    }


def _scaling(
    tmp: str, model: str, url: str, crop: tuple[int, ...] | None, shape: tuple[int, ...]
) -> dict:
    """The same blocks on 1 and 2 single-threaded worker processes."""
    scale_shape = (min(128, shape[0]), *shape[1:])
    scale_url = _input(os.path.join(tmp, "scale"), scale_shape) if crop != scale_shape else url
    secs, busy = {}, {}
    for workers in (1, 2):
        args = {
            "model": model,
            "patch": list(PATCH),
            "batch": BATCH,
            "threads": 1,
            "overlap": 0.25,
            "workers": workers,
            "processes": True,
            "input": scale_url,
            "out": os.path.join(tmp, f"s{workers}.zarr", "pred"),
            "block": [128, 128, 128],
            "warm": True,
        }
        run = _subprocess("petaseg", args)
        secs[workers], busy[workers] = run["seconds"], run["busy_fraction"]
    return {
        "scaling_2_workers": secs[1] / secs[2],
        "scaling_detail": {
            "shape": list(scale_shape),
            "block": [128, 128, 128],
            "overlap": 0.25,
            "seconds_1_worker": secs[1],
            "seconds_2_workers": secs[2],
            "busy_fraction_1_worker": busy[1],
            "busy_fraction_2_workers": busy[2],
            "cpu_cores": len(os.sched_getaffinity(0)),
            "load_avg_1min": os.getloadavg()[0],
        },
    }


if __name__ == "__main__":
    kind, payload = sys.argv[1], json.loads(sys.argv[2])
    runner = {
        "monai": _run_monai,
        "petaseg": _run_petaseg,
        "layout": _run_layout,
        "gpu": _run_gpu,
    }[kind]
    print(json.dumps(runner(payload)))
