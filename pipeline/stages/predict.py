"""The predict stage: a network over a volume, block by block, seam-free, into Zarr.

Patch positions come from one global grid over the whole input (see
``pipeline.inference.patch_grid``); each block computes the global patches that overlap its write
ROI, reading their full extent, and blends them with the Gaussian window, so the output equals
one whole-volume sliding-window pass (MONAI's placement and window) up to float rounding. Each
worker loads the network once (per-process cache keyed by its checksum), uses as many torch
threads as it has cores, and runs on its GPU when it has one (tasks then ask for ``GPU: 1``,
bf16 autocast). Speed without changing the function: batches of patches, channels-last 3D
memory layout (1.7-1.8x on CPU, measured), batch norms folded into the convolutions. A Dask
task runs ``PREFETCH_GROUP`` consecutive blocks and reads the next one's input on a background
thread while the current one computes, so a GPU does not wait on storage; the run's report
(``PredictReport.timing``) says how busy the network kept the workers.

Output values: probabilities in [0, 1] (or raw logits for networks without an activation),
stored as uint8 (``round(255 p)``), float16 or float32; ``value_scale``/``value_offset`` in the
attributes turn stored values back into probabilities: ``p = stored * scale + offset``.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import torch
from distributed import Client
from torch import nn

from pipeline.errors import InputError
from pipeline.geometry import Coord, Roi
from pipeline.inference.engine import EngineConfig, PatchEngine
from pipeline.inference.network import ModelSource, pick_device, set_torch_threads
from pipeline.inference.patch_grid import PatchGrid
from pipeline.inference.prefetch import Prefetcher, thread_prefetcher
from pipeline.inference.timing import busy_summary, collect_times, record_block
from pipeline.io.volume import Volume, create_volume, open_input, open_volume, output_shards
from pipeline.provenance import provenance
from pipeline.runner.blockwise import (
    Block,
    BlockGrid,
    BlockTask,
    RunReport,
    current_client,
    run_blockwise,
    workers_offering,
)
from pipeline.runner.cache import cached
from pipeline.runner.tasks import volume_task

OUTPUT_DTYPES = ("uint8", "float16", "float32")
DEFAULT_PATCH = 64
DEFAULT_CHUNK = 64
# blocks per Dask task when reading ahead: the next block of a task is read while one computes
# (a worker killed mid-task loses at most this many blocks' work)
PREFETCH_GROUP = 4


# ---------------------------------------------------------------------------------------------
# parameters


def round_up(values: Sequence[int], multiple: Sequence[int]) -> Coord:
    return tuple(-(-int(v) // int(m)) * int(m) for v, m in zip(values, multiple, strict=True))


def default_patch(spec) -> Coord:
    return round_up((DEFAULT_PATCH,) * 3, spec.size_multiple)


def check_patch(patch: Sequence[int], spec) -> Coord:
    """Patches must be a positive multiple of the network's size multiple on every axis."""
    patch = tuple(int(p) for p in patch)
    m = tuple(spec.size_multiple)
    if len(patch) != 3 or any(p < mm or p % mm for p, mm in zip(patch, m, strict=True)):
        raise InputError(
            f"--patch {patch}: this network needs patch sizes that are multiples of {m} per axis "
            f"(its pooling stride), at least {m}; use e.g. {round_up(patch, m)}"
        )
    return patch


def check_overlap(overlap: float) -> float:
    if not 0 <= overlap < 1:
        raise InputError(f"--overlap {overlap}: use a fraction in [0, 1), e.g. 0.5")
    return float(overlap)


def check_input_dtype(dtype: np.dtype, url: str) -> None:
    if dtype.kind not in "uif":
        raise InputError(
            f"{url}: input dtype {dtype} cannot be read as intensities; convert it to uint8, "
            "uint16 or float32 first (petaseg convert, or your own script)"
        )


def default_chunks(shape: Sequence[int], block: Sequence[int] | None = None) -> Coord:
    """64 per axis (at most the volume); with a given block, the largest divisor of it up to
    that, so blocks stay whole multiples of chunks."""
    chunks = [min(DEFAULT_CHUNK, s) for s in shape]
    if block is not None:
        chunks = [
            max(d for d in range(1, c + 1) if b % d == 0)
            for c, b in zip(chunks, block, strict=True)
        ]
    return tuple(chunks)


def default_block(patch: Sequence[int], grid: Sequence[int], shape: Sequence[int]) -> Coord:
    """About 4 patches per axis (patches straddling block faces are computed by both blocks,
    so larger blocks waste less), a multiple of the output's write grid, at most the volume."""
    want = [max(4 * p, 128) for p in patch]
    block = round_up(want, grid)
    return tuple(min(b, r) for b, r in zip(block, round_up(shape, grid), strict=True))


def check_block(block: Sequence[int], patch: Sequence[int], shape: Sequence[int]) -> Coord:
    block = tuple(int(b) for b in block)
    small = [
        i for i, (b, p, s) in enumerate(zip(block, patch, shape, strict=True)) if b < min(p, s)
    ]
    if small:
        raise InputError(
            f"--block {block} is smaller than the patch {tuple(patch)} on axis "
            f"{', '.join('zyx'[i] for i in small)}: every block would recompute patches that lie "
            "mostly outside it; use a block at least as large as the patch (4x is a good start)"
        )
    return block


def _gpu_workers(client: Client) -> bool:
    return workers_offering(client, {"GPU": 1})[0] > 0


# ---------------------------------------------------------------------------------------------
# worker side


def make_engine(
    source: ModelSource, cfg: EngineConfig, device: torch.device, channels: tuple[int, int]
) -> PatchEngine:
    """The engine for this process, built once (the network inside is shared across configs)."""
    set_torch_threads()
    net = source.prepared(device, cfg.channels_last, cfg.fuse_bn)  # cached per process
    key = f"predict-engine:{source.checksum}:{device}:{sorted(asdict(cfg).items())}"

    def build() -> PatchEngine:  # must not call cached() itself (its lock is not re-entrant)
        norm = source.spec.normalization
        activation = getattr(source.spec, "activation", "sigmoid")
        return PatchEngine(
            net, cfg, channels[0], channels[1], norm["mean"], norm["std"], activation, device
        )

    return cached(key, build)


def encode(pred: np.ndarray, dtype: str) -> np.ndarray:
    """Probabilities to the stored dtype (uint8: ``round(255 p)``)."""
    if dtype == "uint8":
        return np.clip(np.rint(pred * 255.0), 0, 255).astype(np.uint8)
    return pred.astype(dtype, copy=False)


class PredictBlock:
    """One block: read the patches' extent, predict, blend, write the write ROI.

    With ``prefetch`` (blocks read ahead, 1 or 2) and the run's block ``grid`` and ``group``
    (blocks per Dask task) set by ``plan_predict``, the next block of the same task is read on
    a background thread while this one is computed (``pipeline.inference.prefetch``); the
    values written are the same either way."""

    def __init__(
        self,
        input_url: str,
        output_url: str,
        source: ModelSource,
        cfg: EngineConfig,
        dtype: str,
        device: str = "auto",
        prefetch: int = 1,
    ):
        self.input_url, self.output_url = input_url, output_url
        self.source, self.cfg, self.dtype, self.device = source, cfg, dtype, device
        self.prefetch = prefetch
        self.grid: BlockGrid | None = None
        self.group = 1
        self.run_id = uuid.uuid4().hex  # names this run's times on the workers

    def __call__(self, block: Block) -> None:
        start = time.perf_counter()
        vin = cached(f"vol:r:{self.input_url}", lambda: open_volume(self.input_url))
        vout = cached(f"vol:a:{self.output_url}", lambda: open_volume(self.output_url, mode="a"))
        spec = self.source.spec
        engine = make_engine(
            self.source, self.cfg, pick_device(self.device), (spec.in_channels, spec.out_channels)
        )
        model0 = engine.model_seconds
        write = write_voxels(block, vin)
        reads = thread_prefetcher(self.prefetch) if self.prefetch else None
        if reads is None:
            t0 = time.perf_counter()
            raw, hit = read_input(vin, engine, write), False
            wait = time.perf_counter() - t0
        else:
            raw, hit, wait = self._take(reads, block, vin, engine, write)
        try:
            pred = engine.predict_input(
                raw, vin.shape, write, self.input_url, vin.voxel_size, vin.offset
            )
        except BaseException:
            if reads is not None:
                reads.clear()  # after an error nothing read ahead is kept
            raise
        data = encode(pred, self.dtype)
        vout.write(block.write_roi, data[0] if vout.channels is None else data)
        record_block(self.run_id, engine.device, start, engine.model_seconds - model0, wait, hit)

    def _take(
        self, reads: Prefetcher, block: Block, vin: Volume, engine: PatchEngine, write: Roi
    ) -> tuple[np.ndarray, bool, float]:
        """This block's input (read ahead or now), and the next block's read started; on an
        error nothing read ahead is kept. Reads are keyed by run and block: a read left by a
        cancelled task is never taken for another run's block of the same id."""
        hits, waited = reads.hits, reads.wait_seconds
        try:
            key = (self.run_id, block.block_id)
            raw = reads.take(key, partial(read_input, vin, engine, write))
            following = self.next_block(block)
            if following is None:
                reads.clear()
            else:
                ahead = partial(read_input, vin, engine, write_voxels(following, vin))
                what = f"block {following.block_id} of {self.input_url}"
                reads.submit((self.run_id, following.block_id), ahead, what)
        except BaseException:
            reads.clear()
            raise
        return raw, reads.hits > hits, reads.wait_seconds - waited

    def next_block(self, block: Block) -> Block | None:
        """The block the same Dask task runs next (consecutive ids of one group), if any."""
        nid = block.block_id + 1
        if (
            self.grid is None
            or nid >= self.grid.num_blocks
            or nid // self.group != block.block_id // self.group
        ):
            return None
        return self.grid.block(nid)


def write_voxels(block: Block, vin: Volume) -> Roi:
    """The block's write ROI in voxels of the input."""
    return block.write_roi.shift(tuple(-o for o in vin.offset)).to_voxels(vin.voxel_size)


def read_input(vin: Volume, engine: PatchEngine, write: Roi) -> np.ndarray:
    """The input under every patch of the write ROI ``write`` (voxels), as stored."""
    inside = engine.input_roi(vin.shape, write)
    return vin.read(inside.to_world(vin.voxel_size).shift(vin.offset))


# ---------------------------------------------------------------------------------------------
# client side


def plan_predict(
    model: str | os.PathLike | nn.Module,
    input_url: str,
    output_url: str,
    block: Sequence[int] | None = None,
    patch: Sequence[int] | None = None,
    overlap: float = 0.5,
    tta: bool = False,
    dtype: str = "uint8",
    batch_size: int | None = None,
    device: str = "auto",
    amp: str | None = "bf16",
    channels_last: bool = True,
    chunks: Sequence[int] | None = None,
    spec: Any = None,
    gpu: bool = False,
    prefetch: int = 1,
) -> BlockTask:
    """Check everything, create (or reopen) the output, and return the block task; nothing
    is predicted yet. ``gpu``: the workers advertise a ``GPU`` resource (tasks then ask for it).
    ``prefetch``: blocks whose input is read ahead while one computes (0: none, at most 2).
    """
    vin = open_input(input_url, "predict")
    check_input_dtype(vin.dtype, input_url)
    source = ModelSource.resolve(model, spec)
    check_model_input(source, vin, input_url)
    check_output_options(source, dtype, tta, amp)
    patch = check_patch(patch or default_patch(source.spec), source.spec)
    overlap = check_overlap(overlap)
    if batch_size is not None and batch_size < 1:
        raise InputError(f"--batch-size {batch_size}: use a positive number of patches")
    if prefetch not in (0, 1, 2):
        raise InputError(f"prefetch={prefetch}: read 0, 1 or 2 blocks ahead")
    cfg = EngineConfig(
        patch=patch,
        overlap=overlap,
        batch_size=int(batch_size or 0),
        tta=bool(tta),
        amp=amp,
        channels_last=channels_last,
    )
    chunks = tuple(chunks) if chunks else default_chunks(vin.shape, block)
    block = tuple(block) if block else default_block(patch, chunks, vin.shape)
    block = check_block(block, patch, vin.shape)
    context = PatchGrid.build(vin.shape, patch, overlap).context(block)
    params = prediction_params(source, cfg, dtype)
    out = create_volume(
        output_url,
        vin.shape,
        dtype,
        vin.voxel_size,
        vin.offset,
        chunks=chunks,
        shards=output_shards(vin.shape, block, chunks),
        channels=source.spec.out_channels if source.spec.out_channels > 1 else None,
        attrs=output_attrs(source, params, block, cfg.batch_size, input_url),
        exist_ok=True,
        sources=[input_url],
    )
    process = PredictBlock(vin.url, out.url, source, cfg, dtype, device, prefetch)
    task = volume_task(
        "predict",
        vin,
        out,
        block,
        process,
        params,
        context=context,
        read_bounds=vin.roi,
        edge="clip",
        resources={"GPU": 1} if gpu else None,
        blocks_per_task=PREFETCH_GROUP if prefetch else 1,
    )
    process.grid, process.group = task.grid(), task.blocks_per_task
    return task


def check_model_input(source: ModelSource, vin: Volume, input_url: str) -> None:
    """The network must be 3D and take the input's channels."""
    spec = source.spec
    if spec.ndim != 3:
        raise InputError(f"model {source.name} is {spec.ndim}D; predict needs a 3D network")
    have = vin.channels or 1
    if have != spec.in_channels:
        raise InputError(
            f"{input_url} has {have} channel(s) but model {source.name} takes "
            f"{spec.in_channels}; give it an input with {spec.in_channels} channel(s)"
        )


def check_output_options(source: ModelSource, dtype: str, tta: bool, amp: str | None) -> None:
    """The stored dtype must hold the network's output; TTA must not scramble affinities."""
    spec = source.spec
    if dtype not in OUTPUT_DTYPES:
        raise InputError(f"--dtype {dtype!r}: use one of {', '.join(OUTPUT_DTYPES)}")
    activation = getattr(spec, "activation", "sigmoid")
    if dtype == "uint8" and activation != "sigmoid":
        raise InputError(
            f"--dtype uint8 stores probabilities in [0, 1], but model {source.name} outputs "
            "unbounded logits; use --dtype float16 or float32"
        )
    if tta and spec.output == "affinity":
        raise InputError(
            "--tta flips and transposes patches, which turns an affinity channel into the "
            "opposite neighbour's; drop --tta for affinity models"
        )
    if amp not in (None, "bf16", "fp16"):
        raise InputError(f"amp={amp!r}: use 'bf16', 'fp16' or None")


def prediction_params(source: ModelSource, cfg: EngineConfig, dtype: str) -> dict[str, Any]:
    """What the predicted values depend on: a change recomputes (done markers are keyed on it)."""
    return {
        "model_sha256": source.checksum,
        "patch": list(cfg.patch),
        "overlap": cfg.overlap,
        "tta": cfg.tta,
        "dtype": dtype,
        "amp": cfg.amp,  # GPU autocast changes values slightly: a change recomputes
        "window": {"mode": "gaussian", "sigma_scale": cfg.sigma_scale},
    }


def output_attrs(
    source: ModelSource,
    params: dict[str, Any],
    block: Sequence[int],
    batch_size: int,
    input_url: str,
) -> dict[str, Any]:
    """The output's attributes: provenance, how stored values map to probabilities, and the
    affinity offsets of affinity networks."""
    spec = source.spec
    attrs = {
        "petaseg": provenance(
            "predict",
            {**params, "block": list(block), "batch_size": batch_size},
            model=source.describe(),
            input=input_url,
        ),
        "value_scale": 1.0 / 255.0 if params["dtype"] == "uint8" else 1.0,
        "value_offset": 0.0,
        "output": spec.output,
    }
    if spec.output == "affinity" and spec.offsets:
        attrs["offsets"] = [list(o) for o in spec.offsets]
    return attrs


@dataclass
class PredictReport(RunReport):
    """The runner's report plus where the workers' time went (``pipeline.inference.timing``):
    ``busy_fraction`` (time in the network over the workers' time on the run), seconds in the
    network and waiting for input, the devices used and the GPU's peak memory."""

    timing: dict[str, Any] = field(default_factory=dict)

    @property
    def busy_fraction(self) -> float | None:
        return self.timing.get("busy_fraction")


def run_predict(
    task: BlockTask, client: Client | None = None, progress: bool = True
) -> PredictReport:
    """Run a planned predict task (``plan_predict``) on ``client``; its blocks ask for a
    ``GPU`` when any worker advertises one."""
    client = client if client is not None else current_client()
    if _gpu_workers(client):
        task = replace(task, resources={"GPU": 1})
    report = run_blockwise(task, client=client, progress=progress)
    timing = worker_timing(client, task.process)
    if progress and timing.get("busy_fraction") is not None:
        print(
            f"predict: network busy {timing['busy_fraction']:.0%} of the workers' time on "
            f"{', '.join(timing['devices'])} ({timing['input_wait_seconds']:.1f} s waiting for input)",
            file=sys.stderr,
        )
    return PredictReport(**report.as_dict(), timing=timing)


def worker_timing(client: Client, process: Any) -> dict[str, Any]:
    """The workers' times for the run of ``process`` (a PredictBlock), summed up."""
    run_id = getattr(process, "run_id", None)
    if run_id is None:
        return {"busy_fraction": None, "devices": []}
    try:
        per_worker = client.run(collect_times, run_id, on_error="return")
    except Exception:  # noqa: BLE001 - a worker gone after the run: no figures from it
        return {"busy_fraction": None, "devices": []}
    return busy_summary({w: t for w, t in per_worker.items() if isinstance(t, dict)})


def predict(
    model: str | os.PathLike | nn.Module,
    input_url: str,
    output_url: str,
    client: Client | None = None,
    progress: bool = True,
    **options: Any,
) -> RunReport:
    """Predict ``model`` (zoo name, checkpoint path, or an ``nn.Module`` with a ``spec``) over
    ``input_url`` into ``output_url``; resumable (finished blocks are skipped on a rerun).

    Options (see ``plan_predict``): ``block``, ``patch``, ``chunks`` in voxels (z, y, x);
    ``overlap``; ``tta``; ``dtype``; ``batch_size``; ``device``; ``amp`` (GPU autocast dtype,
    "bf16", "fp16" or None; CPUs always compute in float32); ``channels_last``; ``spec``.
    """
    task = plan_predict(model, input_url, output_url, **options)  # refuse bad input first
    return run_predict(task, client, progress)


def predict_array(
    model: nn.Module | str | os.PathLike,
    raw: np.ndarray,
    patch: Sequence[int] | None = None,
    overlap: float = 0.5,
    tta: bool = False,
    batch_size: int = 0,
    device: str = "auto",
    amp: str | None = "bf16",
    channels_last: bool = True,
    spec: Any = None,
) -> np.ndarray:
    """One whole-volume pass over an in-memory array ((c,) z, y, x): float32 (C, z, y, x).
    The reference the blockwise stage equals; also handy in notebooks."""
    source = ModelSource.resolve(model, spec)
    spec = source.spec
    check_input_dtype(raw.dtype, "raw array")
    patch = check_patch(patch or default_patch(spec), spec)
    cfg = EngineConfig(
        patch, check_overlap(overlap), batch_size, tta, amp, channels_last=channels_last
    )
    engine = make_engine(source, cfg, pick_device(device), (spec.in_channels, spec.out_channels))
    shape = raw.shape[-3:]

    def read(roi: Roi) -> np.ndarray:
        return raw[(Ellipsis, *roi.to_slices())]

    return engine.predict(read, shape, Roi((0, 0, 0), shape), "raw array")
