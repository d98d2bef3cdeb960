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
each) over a 1-worker one, on the same blocks (128^3, z 0..128 of the volume to bound the time).

Set ``PETASEG_BENCH_INFERENCE_CROP=Z,Y,X`` for a quick run on a corner crop.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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

    from pipeline.stages.predict import predict
    from pipeline.volume import open_volume

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

    from models.checkpoint import save_checkpoint
    from models.unet import UNet

    cfg = yaml.safe_load((ZOO / f"{MODEL}.yaml").read_text())["model"]
    torch.manual_seed(0)
    net = UNet(**cfg).eval()
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

    from pipeline.volume import create_volume

    with h5py.File(DATA, "r") as f:
        raw = f["volumes/raw"][tuple(slice(0, c) for c in crop)]
    url = os.path.join(tmp, "in.zarr", "raw")
    vol = create_volume(url, raw.shape, raw.dtype, (10, 10, 10), chunks=(64, 64, 64))
    vol.write(vol.roi, raw)
    return url


def main(json_out: bool = False) -> dict:
    if not DATA.exists():
        return {"skipped": f"real data not available: {DATA}"}
    import numpy as np
    import torch

    from pipeline.volume import open_volume

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
        block = tuple(-(-s // 64) * 64 for s in shape)  # one block covers the volume
        runs = []
        for overlap in OVERLAPS:
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
            m = _subprocess(
                "monai", {**common, "h5": str(DATA), "crop": list(crop or ()), "out": mout}
            )
            ours, theirs = open_volume(pout).read(), np.load(mout)
            runs.append(
                {
                    "overlap": overlap,
                    "petaseg_vps": p["voxels"] / p["seconds"],
                    "monai_vps": m["voxels"] / m["seconds"],
                    "ratio_vs_monai": m["seconds"] / p["seconds"],
                    "petaseg_seconds": p["seconds"],
                    "monai_seconds": m["seconds"],
                    "petaseg_peak_mb": p["peak_mb"],
                    "monai_peak_mb": m["peak_mb"],
                    "max_abs_diff": float(np.abs(ours - theirs).max()),
                }
            )
        main_run = runs[0]
        for key in (
            "petaseg_vps",
            "monai_vps",
            "ratio_vs_monai",
            "petaseg_peak_mb",
            "monai_peak_mb",
            "max_abs_diff",
        ):
            result[key] = main_run[key]
        result["runs"] = runs

        # scaling: same blocks on 1 and 2 single-threaded worker processes
        scale_shape = (min(128, shape[0]), *shape[1:])
        scale_url = _input(os.path.join(tmp, "scale"), scale_shape) if crop != scale_shape else url
        secs = {}
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
            }
            secs[workers] = _subprocess("petaseg", args)["seconds"]
        result["scaling_2_workers"] = secs[1] / secs[2]
        result["scaling_detail"] = {
            "shape": list(scale_shape),
            "block": [128, 128, 128],
            "overlap": 0.25,
            "seconds_1_worker": secs[1],
            "seconds_2_workers": secs[2],
            "cpu_cores": len(os.sched_getaffinity(0)),
            "load_avg_1min": os.getloadavg()[0],
        }
    if torch.cuda.is_available():
        result["gpu"] = "CUDA is available but the GPU measurement is not implemented in this run"
    else:
        result["gpu"] = None
        result["gpu_reason"] = (
            "no CUDA device on this machine; gpu_vps/gpu_peak_fraction not measured"
        )
    if not json_out:
        print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    kind, payload = sys.argv[1], json.loads(sys.argv[2])
    runner = {"monai": _run_monai, "petaseg": _run_petaseg}[kind]
    print(json.dumps(runner(payload)))
