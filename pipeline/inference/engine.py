"""Predict one region of a volume: batched patches on the global grid, Gaussian-blended.

For a write ROI, the engine reads the input under every global patch that overlaps it (once,
as one array in the input's own dtype), normalises patches as they are batched, runs the
network, and accumulates ``window * prediction`` into a buffer the size of the write ROI and
``window`` into one patch's worth of z-rows (``SlabWeights``); the result is their ratio. The
same arithmetic for a whole volume (one ROI) or
for any tiling of it, so blockwise output equals a single whole-volume pass up to float rounding.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from itertools import islice

import numpy as np
import torch
from torch import nn

from pipeline.errors import InputError
from pipeline.geometry import Coord, Roi
from pipeline.inference import tta
from pipeline.inference.network import FORWARD_LOCK
from pipeline.inference.patch_grid import PatchGrid
from pipeline.inference.window import gaussian_window

Reader = Callable[[Roi], np.ndarray]  # voxel ROI inside the volume -> raw ((c,) z, y, x)


@dataclass
class EngineConfig:
    patch: Coord
    overlap: float = 0.5
    batch_size: int = 0  # patches per forward pass; 0 = auto (2 on CPU, 8 on a GPU)
    tta: bool = False
    amp: str | None = None  # "bf16" / "fp16" autocast on GPU; None = float32
    channels_last: bool = True
    fuse_bn: bool = True  # fold eval batch norms into convolutions (pipeline.inference.fuse)
    sigma_scale: float = 0.125


class PatchEngine:
    """A prepared network plus everything fixed for a run (window, transforms, batch size).

    ``mean``/``std`` normalise raw intensities; ``activation`` is "sigmoid" or None.
    """

    def __init__(
        self,
        net: nn.Module,
        config: EngineConfig,
        in_channels: int,
        out_channels: int,
        mean: float = 0.0,
        std: float = 1.0,
        activation: str | None = "sigmoid",
        device: torch.device | str = "cpu",
    ):
        self.net, self.cfg = net, config
        self.in_channels, self.out_channels = in_channels, out_channels
        self.mean, self.std = float(mean), float(std)
        self.activation = activation
        self.device = torch.device(device)
        self.window = gaussian_window(config.patch, config.sigma_scale, self.device)
        # CPU: batch 2 runs ~2x faster per voxel than batch 1 (oneDNN parallelises the batch),
        # batch 4 no faster but twice the activation memory (measured, 2 cores, this U-Net)
        self.batch_size = config.batch_size or (8 if self.device.type == "cuda" else 2)
        self.transforms = tta.transforms(config.patch, config.tta)
        self._clock = threading.local()  # per calling thread: Dask threads share an engine

    @property
    def model_seconds(self) -> float:
        """Seconds the calling thread has spent in the network's forward passes (GPU work
        included: the clock stops after a synchronize)."""
        return getattr(self._clock, "seconds", 0.0)

    # ------------------------------------------------------------------------------------------
    def grid(self, shape: Sequence[int]) -> PatchGrid:
        return PatchGrid.build(shape, self.cfg.patch, self.cfg.overlap)

    def input_roi(self, shape: Sequence[int], write: Roi) -> Roi:
        """The voxels (inside the volume) under every patch that overlaps ``write``: what
        ``predict`` reads, once."""
        span = self.grid(shape).span(write)
        return span.intersect(Roi((0,) * len(shape), tuple(shape)))

    def predict(
        self,
        read: Reader,
        shape: Sequence[int],
        write: Roi,
        name: str = "input",
        voxel_size: Sequence[int] | None = None,
        offset: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Blended prediction (out_channels, *write.shape), float32, for the voxel ROI ``write``
        of a volume of ``shape`` voxels. ``read`` is called once, for the patches' extent."""
        inside = self.input_roi(shape, write)
        return self.predict_input(read(inside), shape, write, name, voxel_size, offset)

    def predict_input(
        self,
        raw: np.ndarray,
        shape: Sequence[int],
        write: Roi,
        name: str = "input",
        voxel_size: Sequence[int] | None = None,
        offset: Sequence[int] | None = None,
    ) -> np.ndarray:
        """``predict`` from input already read: ``raw`` holds ``input_roi(shape, write)``."""
        grid = self.grid(shape)
        inside = self.input_roi(shape, write)
        if raw.ndim == len(shape):
            raw = raw[None]
        if raw.shape[0] != self.in_channels:
            raise InputError(
                f"{name} has {raw.shape[0]} channel(s) but the network takes {self.in_channels}; "
                "give it an input with that many channels"
            )
        check_finite(raw, inside, name, voxel_size, offset)
        raw_t = torch.from_numpy(np.ascontiguousarray(raw))

        out = torch.zeros(
            (self.out_channels, *write.shape), dtype=torch.float32, device=self.device
        )
        weight = SlabWeights(out, write, self.cfg.patch[0])
        starts = grid.overlapping(write)  # z-major: SlabWeights relies on it
        for batch in _batched(starts, self.batch_size):
            x = self._batch(raw_t, inside, batch)
            y = self._forward(x)
            for i, start in enumerate(batch):
                self._accumulate(out, weight, y[i], Roi(start, self.cfg.patch), write)
        weight.finish()
        return out.cpu().numpy()

    # ------------------------------------------------------------------------------------------
    def _batch(self, raw: torch.Tensor, inside: Roi, starts: list[Coord]) -> torch.Tensor:
        """Normalised input patches (B, C, *patch). Outside the volume (only on axes thinner
        than the patch) the raw value is ``mean``, i.e. 0 after normalisation, like MONAI's
        zero padding of its (normalised) input."""
        patch = self.cfg.patch
        x = torch.full((len(starts), self.in_channels, *patch), self.mean, dtype=torch.float32)
        for i, start in enumerate(starts):
            box = Roi(start, patch)
            src = box.intersect(inside)
            s = (slice(None),) + src.shift(tuple(-b for b in inside.begin)).to_slices()
            d = (i, slice(None)) + src.shift(tuple(-b for b in start)).to_slices()
            x[d] = raw[s]
        x.sub_(self.mean).div_(self.std)
        return x.to(self.device, non_blocking=True)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last_3d if self.cfg.channels_last else torch.contiguous_format
        autocast = precision_context(self.device, self.cfg.amp)

        def run(t: torch.Tensor) -> torch.Tensor:
            y = self.net(t.contiguous(memory_format=fmt))
            y = y.float()
            return torch.sigmoid(y) if self.activation == "sigmoid" else y

        with FORWARD_LOCK, torch.inference_mode(), autocast:
            t0 = time.perf_counter()
            y = tta.averaged(run, x, self.transforms)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)  # the model's time, not its queueing
            self._clock.seconds = self.model_seconds + time.perf_counter() - t0
        if y.shape[1] != self.out_channels or tuple(y.shape[2:]) != tuple(self.cfg.patch):
            raise InputError(
                f"the network returned shape {tuple(y.shape[1:])} for input patches of "
                f"{tuple(self.cfg.patch)}; predict needs a 'same'-padded network with "
                f"{self.out_channels} output channel(s)"
            )
        return y.contiguous()

    def _accumulate(
        self, out: torch.Tensor, weight: SlabWeights, y: torch.Tensor, box: Roi, write: Roi
    ) -> None:
        weight.advance(box.begin[0])
        common = box.intersect(write)
        src = common.shift(tuple(-b for b in box.begin)).to_slices()
        dst = common.shift(tuple(-b for b in write.begin)).to_slices()
        w = self.window[src]
        out[(slice(None), *dst)].addcmul_(y[(slice(None), *src)], w)
        weight.rows[(src[0], *dst[1:])] += w  # window rows are patch-local z rows


# How far bf16 autocast on a GPU may move predicted probabilities from float32 (documented in
# the README, "GPU"; checked by the gpu tests). Measured for fib-boundary-v1 on a 32x96x96 FIB
# crop with bf16 autocast (CPU-emulated): max 0.031, mean 0.0005, 99.96 % agree at 0.5.
BF16_MAX_ABS_DIFF = 0.05
BF16_MEAN_ABS_DIFF = 0.002


def precision_context(device: torch.device, amp: str | None) -> AbstractContextManager:
    """The arithmetic of a forward pass: on a GPU, ``amp`` autocast ("bf16"/"fp16") or exact
    float32 (no TF32, which cuDNN uses for float32 convolutions by default); on a CPU float32."""
    if device.type != "cuda":
        return nullcontext()
    if amp:
        return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
    return exact_float32()


@contextmanager
def exact_float32() -> Iterator[None]:
    """IEEE float32 convolutions and matmuls on CUDA inside the block (restored after)."""
    conv, mm = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    saved = conv.fp32_precision, mm.fp32_precision
    conv.fp32_precision, mm.fp32_precision = "ieee", "ieee"
    try:
        yield
    finally:
        conv.fp32_precision, mm.fp32_precision = saved


class SlabWeights:
    """The weight sums, kept only for the z-rows that patches can still reach.

    Patches arrive in z-major order, so once a patch starts at ``z``, no later patch touches
    rows above ``z``: those rows are final and are normalised (numerator / weight) at once. So
    the weights need ``patch_z`` rows, not a whole write ROI (a 250^3 block: 16 MB, not 62 MB).
    """

    def __init__(self, out: torch.Tensor, write: Roi, patch_z: int):
        self.out, self.write, self.pz = out, write, patch_z
        self.rows = torch.zeros((patch_z, *write.shape[1:]), dtype=out.dtype, device=out.device)
        self.z0: int | None = None  # volume z of rows[0] = start of the current patches

    def advance(self, z: int) -> None:
        if self.z0 is None:
            self.z0 = z
        if z == self.z0:
            return
        if z < self.z0:
            raise AssertionError("patches must arrive in z-major order")
        self._normalise(self.z0, z)
        delta = z - self.z0
        if delta < self.pz:
            self.rows[: self.pz - delta] = self.rows[delta:].clone()
            self.rows[self.pz - delta :] = 0
        else:
            self.rows.zero_()
        self.z0 = z

    def finish(self) -> None:
        if self.z0 is not None:
            self._normalise(self.z0, self.z0 + self.pz)

    def _normalise(self, lo: int, hi: int) -> None:
        """Divide the numerator's rows [lo, hi) (volume z, inside the write ROI) by weights."""
        wz0, wz1 = self.write.begin[0], self.write.end[0]
        a, b = max(lo, wz0), min(hi, wz1, lo + self.pz)
        if a < b:
            self.out[:, a - wz0 : b - wz0] /= self.rows[a - lo : b - lo]


def _batched(items: Iterator[Coord], n: int) -> Iterator[list[Coord]]:
    while batch := list(islice(items, n)):
        yield batch


def check_finite(
    raw: np.ndarray,
    roi: Roi,
    name: str,
    voxel_size: Sequence[int] | None = None,
    offset: Sequence[int] | None = None,
) -> None:
    """Refuse NaN/inf input, naming the first bad voxel (voxels and nm)."""
    if raw.dtype.kind != "f":
        return
    finite = np.isfinite(raw)
    if finite.all():
        return
    bad = np.argwhere(~finite)[0]
    channel, local = (int(bad[0]), bad[1:]) if raw.ndim == roi.ndim + 1 else (None, bad)
    voxel = tuple(int(b + v) for b, v in zip(roi.begin, local, strict=True))
    where = f"voxel (z, y, x) = {voxel}"
    if voxel_size is not None:
        nm = tuple(
            v * s + o
            for v, s, o in zip(voxel, voxel_size, offset or (0,) * len(voxel), strict=True)
        )
        where += f", {nm} nm"
    if channel is not None and raw.shape[0] > 1:
        where += f", channel {channel}"
    count = int((~finite).sum())
    raise InputError(
        f"{name} holds NaN/inf values ({count} in this block's region), the first at {where}; "
        "the network cannot predict from them: replace them (e.g. with the mean intensity) "
        "or mask that region out of the input"
    )
