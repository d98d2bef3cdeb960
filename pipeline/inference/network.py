"""Which network a predict run uses, how it reaches the workers, and how a worker prepares it.

A run names its network by a ``ModelSource``: a shipped model name or checkpoint path (each
worker loads the file itself), or an in-memory ``nn.Module`` (tests, notebooks; pickled with the
task). Either way the source carries the network's ``ModelSpec`` and a checksum, so workers cache
the prepared network per process under that checksum (loaded once per worker, not per block) and
done markers change when the weights do.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import torch
from distributed import get_worker
from torch import nn

from pipeline.errors import CheckpointError, InputError
from pipeline.inference.fuse import fold_batch_norms
from pipeline.runner.cache import cached

# One forward pass at a time per process: a worker's torch threads (or its GPU) serve one batch,
# while the worker's other threads read and write blocks.
FORWARD_LOCK = threading.Lock()


def module_checksum(module: nn.Module, config: Any = None) -> str:
    """sha256 over the architecture config and every parameter/buffer, for in-memory networks."""
    h = hashlib.sha256()
    h.update(type(module).__qualname__.encode())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@dataclass
class ModelSource:
    """A network for predict: ``ref`` (zoo name or checkpoint path) or ``module``."""

    name: str
    checksum: str
    spec: Any  # models.spec.ModelSpec
    ref: str | None = None
    module: nn.Module | None = field(default=None, repr=False)

    @classmethod
    def resolve(cls, model: str | os.PathLike | nn.Module, spec: Any = None) -> ModelSource:
        """Load (on the client) what the run needs to plan: the spec and the checksum."""
        if isinstance(model, nn.Module):
            spec = spec if spec is not None else getattr(model, "spec", None)
            if spec is None:
                raise InputError(
                    f"network {type(model).__name__} has no .spec; pass spec=ModelSpec(...) "
                    "(channels, output kind, size multiple, normalisation) with it"
                )
            config = getattr(model, "config", None)
            return cls(
                name=type(model).__name__,
                checksum=module_checksum(model, config),
                spec=spec,
                module=copy.deepcopy(model).cpu().eval(),
            )
        path, net = open_checkpoint(model)
        return cls(name=str(model), checksum=net.checksum, spec=net.spec, ref=str(path))

    def describe(self) -> dict[str, Any]:
        """Provenance: what made the output."""
        return {
            "name": self.name,
            "checkpoint": self.ref,
            "sha256": self.checksum,
            "spec": self.spec.to_dict() if hasattr(self.spec, "to_dict") else str(self.spec),
        }

    def _load(self) -> nn.Module:
        if self.module is not None:
            return self.module
        _, net = open_checkpoint(self.ref, where="on worker: ")
        if net.checksum != self.checksum:
            raise CheckpointError(
                f"checkpoint {self.ref} changed during the run (sha256 {net.checksum[:12]} on the "
                f"worker, {self.checksum[:12]} when the run started); rerun predict"
            )
        return net

    def prepared(
        self, device: torch.device, channels_last: bool, fuse_bn: bool = True
    ) -> nn.Module:
        """The network on ``device`` in eval mode (batch norms folded into the convolutions
        when ``fuse_bn``), built once per process (worker cache)."""
        key = f"predict-net:{self.checksum}:{device}:{channels_last}:{fuse_bn}"

        def build() -> nn.Module:
            net = self._load()
            if self.module is not None:  # in-process runs: never move the caller's copy
                net = copy.deepcopy(net)
            net = net.eval()
            if fuse_bn:
                fold_batch_norms(net)
            net = net.to(device)
            for p in net.parameters():
                p.requires_grad_(False)
            if channels_last:
                net = net.to(memory_format=torch.channels_last_3d)
            return net

        return cached(key, build)


def open_checkpoint(ref: str | os.PathLike, where: str = "") -> tuple[os.PathLike, nn.Module]:
    """The checkpoint file of a zoo name or path and the network in it. The model library's
    CheckpointError becomes the pipeline's (same message, ``where`` in front), so callers of the
    pipeline catch one error type whichever layer found the fault."""
    from models.errors import CheckpointError as ModelCheckpointError
    from models.zoo import load_model, model_path

    try:
        path = model_path(ref)
        return path, load_model(path)
    except ModelCheckpointError as e:
        raise CheckpointError(f"{where}{e}") from None


def worker_threads() -> int:
    """Cores this process should use for torch: the Dask worker's thread count inside a worker,
    else the CPUs this process may run on."""
    try:
        return max(1, int(get_worker().state.nthreads))
    except (ValueError, AttributeError):
        pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def set_torch_threads() -> int:
    """Match torch's intra-op threads to the worker's cores. Called for every block: the
    setting is partly per calling thread (OpenMP), and Dask runs blocks on pool threads."""
    n = worker_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def pick_device(device: str) -> torch.device:
    """ "auto": the GPU when this process has one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device={device!r} but this process sees no CUDA GPU; use cpu or auto")
    return torch.device(device)
