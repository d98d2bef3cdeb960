"""``petaseg bench model``: the shipped boundary model's quality and speed on this machine.

Quality: boundary F1 at 0.5 and average precision on the held-out sections z 130..159 of the
FIB medulla crop (the sections the model never trained on). Speed: training and inference
voxels/s on the CPU (fp32 and bf16 autocast), FLOPs per voxel counted by
torch.utils.flop_counter, and the same network shape in MONAI (the peer) side by side as ratios.

GPU section (when CUDA is there; ``"gpu": null`` and the reason otherwise): bf16 autocast
inference on batches copied from host memory (``gpu_vps``, ``gpu_busy_fraction``: time in the
network by CUDA events over wall), bf16 training voxels/s, ``gpu_peak_mb`` (torch's peak
allocated) and ``gpu_peak_fraction`` (FLOPs per voxel x voxels/s over the GPU's measured bf16
matmul rate, see benchmarks/gpu_figures). ``PETASEG_BENCH_GPU_ONLY=1``: the GPU section only.
"""

from __future__ import annotations

import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.gpu_figures import gpu_only, gpu_wanted

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fib_medulla_flyem" / "fib_medulla_train.h5"
MODEL = "fib-boundary-v1"
VAL_Z = (130, 160)
BLOCK = (64, 128, 128)  # inference block (network input) for the throughput figures
CROP = (64, 64, 64)  # training crop, as in the shipped model's config


def held_out() -> tuple[np.ndarray, np.ndarray] | None:
    if not DATA.exists():
        return None
    import h5py

    with h5py.File(DATA, "r") as f:
        raw = f["volumes/raw"][VAL_Z[0] : VAL_Z[1]]
        labels = f["volumes/labels/neuron_ids"][VAL_Z[0] : VAL_Z[1]]
    return raw, labels


def evaluate(model, raw: np.ndarray, labels: np.ndarray, precision: str = "fp32") -> dict:
    """Boundary F1 at 0.5 and average precision of the model on a labelled volume."""
    from models.volumetric.metrics import average_precision, f1_score
    from models.volumetric.predict import predict_volume
    from models.volumetric.targets import boundary_map

    t = time.perf_counter()
    pred = predict_volume(model, raw, precision=precision)[0]
    seconds = time.perf_counter() - t
    target, mask = boundary_map(labels)
    f1 = f1_score(pred, target, mask, 0.5)
    return {
        "f1": f1["f1"],
        "precision": f1["precision"],
        "recall": f1["recall"],
        "ap": average_precision(pred, target, mask),
        "seconds": seconds,
        "vps_with_context": raw.size / seconds,
    }


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up (oneDNN primitive creation)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def infer_vps(net: torch.nn.Module, precision: str, repeats: int = 2) -> float:
    x = torch.randn(1, 1, *BLOCK)
    net.eval()

    def run():
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            net(x)

    return x.numel() / _best_time(run, repeats)


def train_vps(
    net: torch.nn.Module, precision: str, repeats: int = 3, device: torch.device | None = None
) -> float:
    from models.device import autocast
    from models.volumetric.losses import masked_loss

    device = device or torch.device("cpu")
    x = torch.randn(1, 1, *CROP, device=device)
    y = (torch.rand_like(x) < 0.13).float()
    m = torch.ones_like(x)
    opt = torch.optim.Adam(net.parameters(), lr=1e-6)
    net.train()

    def step():
        with autocast(device, precision):
            logits = net(x)
        loss = masked_loss("bce_dice", logits.float(), y, m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return x.numel() / _best_time(step, repeats)


def flops_per_voxel(net: torch.nn.Module) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, 1, 32, 32, 32)
    net.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(x)
    return counter.get_total_flops() / x.numel()


def monai_peer(widths) -> torch.nn.Module | None:
    """MONAI's BasicUNet built like ours: two 3x3x3 conv + batch norm + ReLU per level, max-pool,
    transposed-conv upsampling, concatenated skips. BasicUNet always has five levels, so it gets
    one extra (cheap, 1/16-resolution) level of the deepest width."""
    try:
        from monai.networks.nets import BasicUNet
    except ImportError:
        return None
    w = list(widths)
    features = (w + [w[-1]] * (5 - len(w)))[:5] + [w[0]]
    return BasicUNet(
        spatial_dims=3, in_channels=1, out_channels=1, features=tuple(features),
        act=("relu", {"inplace": True}), norm=("batch", {}), upsample="deconv",
    )  # fmt: skip


def main(json_out: bool = False) -> dict:
    from models.volumetric.predict import cpu_has_native_bf16
    from models.zoo import load_model, model_path

    torch.set_num_threads(1)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = load_model(MODEL)
    n_params = sum(p.numel() for p in model.parameters())
    out: dict = {
        "model": MODEL,
        "device": f"CPU ({os.cpu_count()} cores), torch threads=1",
        "params": n_params,
        "file_bytes": model_path(MODEL).stat().st_size,
        "receptive_field": list(model.spec.receptive_field),
        "context": list(model.spec.context),
        "flops_per_voxel": flops_per_voxel(model),
        "cpu": platform.processor() or platform.machine(),
        "cpu_native_bf16": cpu_has_native_bf16(),
    }
    if not gpu_only():
        out.update(cpu_sections(model, out))
    run_gpu, why = gpu_wanted()
    if run_gpu:
        out.update(gpu_benchmark(model))
    else:
        out["gpu"] = None
        out["gpu_reason"] = why
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def cpu_sections(model: torch.nn.Module, out: dict) -> dict:
    """Held-out quality, CPU train/inference voxels/s, and MONAI's BasicUNet beside them."""
    from models.zoo import load_model

    res: dict = {}
    # emulated bf16 (no AVX512-BF16/AMX) is many times slower than fp32: its figures would
    # measure the emulation, so they are left out there
    bf16 = out["cpu_native_bf16"]
    data = held_out()
    if data is None:
        res["val_skipped"] = f"held-out data not found at {DATA}"
    else:
        res.update(quality(model, data, bf16))
    res["infer_vps"] = round(infer_vps(model, "fp32"))
    fresh = load_model(MODEL)  # training changes weights: never touch the loaded model
    res["train_vps"] = round(train_vps(fresh, "fp32"))
    if bf16:
        res["infer_vps_bf16"] = round(infer_vps(model, "bf16"))
        res["train_vps_bf16"] = round(train_vps(fresh, "bf16"))
    res["infer_block"] = list(BLOCK)
    res["train_crop"] = list(CROP)
    peer = monai_peer(model.config["encoder"]["widths"])
    if peer is not None:
        peer_infer = infer_vps(peer, "fp32")
        peer_fpv = flops_per_voxel(peer)
        res["peer"] = {
            "name": "monai.networks.nets.BasicUNet (same block design and widths, 5 levels)",
            "flops_per_voxel": peer_fpv,
            "infer_vps": round(peer_infer),
            "ratio_infer_vps_ours_over_peer": round(res["infer_vps"] / peer_infer, 3),
            # achieved FLOP/s normalises away the extra level: the implementation's efficiency
            "ratio_infer_flops_per_s_ours_over_peer": round(
                res["infer_vps"] * out["flops_per_voxel"] / (peer_infer * peer_fpv), 3
            ),
        }
    return res


def quality(model: torch.nn.Module, data: tuple[np.ndarray, np.ndarray], bf16: bool) -> dict:
    """Held-out boundary F1 and AP (and in bf16 where the CPU has it natively)."""
    ev = evaluate(model, *data)
    res = dict(
        val_sections=list(VAL_Z),
        val_boundary_f1=round(ev["f1"], 4),
        val_boundary_precision=round(ev["precision"], 4),
        val_boundary_recall=round(ev["recall"], 4),
        val_average_precision=round(ev["ap"], 4),
        predict_vps_with_context=round(ev["vps_with_context"]),
    )
    if bf16:
        fast = evaluate(model, *data, precision="bf16")
        res.update(
            val_boundary_f1_bf16=round(fast["f1"], 4),
            val_average_precision_bf16=round(fast["ap"], 4),
            predict_vps_with_context_bf16=round(fast["vps_with_context"]),
        )
    return res


def gpu_benchmark(model: torch.nn.Module) -> dict:
    """bf16 autocast on the GPU: inference and training voxels/s, achieved FLOP/s as a fraction
    of the GPU's measured bf16 matmul rate, peak memory, and the busy fraction of a loop that
    copies each batch from host memory (time in the network, from CUDA events, over wall)."""
    import copy

    from benchmarks.gpu_figures import bf16_matmul_flops, peak_mb
    from benchmarks.gpu_figures import flops_per_voxel as counted_flops

    dev = torch.device("cuda")
    net = copy.deepcopy(model).to(dev).eval()
    fpv = counted_flops(net, BLOCK)
    peak = bf16_matmul_flops(dev)
    torch.cuda.reset_peak_memory_stats()
    host = torch.randn(GPU_BATCH, 1, *BLOCK).pin_memory()
    forward_s, wall_s = _gpu_loop(net, host, repeats=10)
    vps = GPU_BATCH * math.prod(BLOCK) * 10 / wall_s
    trained = copy.deepcopy(model).to(dev)
    train = train_vps(trained, "bf16", device=dev)
    return {
        "gpu": torch.cuda.get_device_name(0),
        "gpu_vps": round(vps),
        "gpu_infer_vps_in_network": round(GPU_BATCH * math.prod(BLOCK) * 10 / forward_s),
        "gpu_train_vps_bf16": round(train),
        "gpu_peak_fraction": round(vps * fpv / peak, 4),
        "gpu_busy_fraction": round(forward_s / wall_s, 4),
        "gpu_peak_mb": peak_mb(),
        "gpu_bf16_matmul_tflops": round(peak / 1e12, 1),
        "gpu_flops_per_voxel": fpv,
        "gpu_batch": [GPU_BATCH, 1, *BLOCK],
    }


GPU_BATCH = 4


def _gpu_loop(net: torch.nn.Module, host: torch.Tensor, repeats: int) -> tuple[float, float]:
    """Seconds in the network (CUDA events) and wall seconds of ``repeats`` forward passes, each
    on a batch copied from host memory, after two warm-up passes."""
    events = []
    with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16):
        for i in range(repeats + 2):
            if i == 2:
                torch.cuda.synchronize()
                t0 = time.perf_counter()
            x = host.to("cuda", non_blocking=True)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            net(x)
            end.record()
            if i >= 2:
                events.append((start, end))
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    return sum(s.elapsed_time(e) for s, e in events) / 1000, wall
