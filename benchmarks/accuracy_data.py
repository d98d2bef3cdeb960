"""Inputs of ``petaseg bench accuracy``: the two volumes, their parts, each model's prediction
(cached under ``~/.cache/petaseg/accuracy``) and the parts' crops of predictions and ground truth.

Volumes (10 nm voxels; gala's voxel size is not stated by its source, its DATA.md says 10 nm is
likely): ``fib`` = fib_medulla_train (160x250x250), parts ``train_a`` z 0-49, ``train_b`` z
50-99 (together the choice set z 0-99) and ``test`` z 130-159 (unseen in training by every
model); ``gala`` = gala_fib_train (50x100x200), parts ``half_a`` x 0-99 and ``half_b`` x 100-199
(the two folds). ``PETASEG_BENCH_ACCURACY_YX=N`` keeps only y, x < N of both (tests).
``PETASEG_BENCH_ACCURACY_TTA=1`` predicts with test-time augmentation (``petaseg predict --tta``,
16 flips and transposes averaged; boundary models only), cached apart from plain predictions.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SOURCES = {
    "fib": DATA / "fib_medulla_flyem" / "fib_medulla_train.h5",
    "gala": DATA / "gala_fib_example" / "gala_fib_train.h5",
}
VOXEL = (10, 10, 10)
CHUNKS = (64, 128, 128)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def yx_limit() -> int | None:
    value = os.environ.get("PETASEG_BENCH_ACCURACY_YX")
    return int(value) if value else None


def cache_root() -> Path:
    default = Path.home() / ".cache" / "petaseg" / "accuracy"
    root = Path(os.environ.get("PETASEG_BENCH_ACCURACY_CACHE", default))
    n = yx_limit()
    return root / f"yx{n}" if n else root


def parts(volume: str, shape: tuple[int, ...]) -> dict[str, tuple[slice, slice, slice]]:
    """The named parts of a volume (z, y, x slices of the possibly cropped volume)."""
    every = slice(None)
    if volume == "fib":
        return {
            "train_a": (slice(0, 50), every, every),
            "train_b": (slice(50, 100), every, every),
            "test": (slice(130, 160), every, every),
        }
    half = shape[2] // 2
    return {"half_a": (every, every, slice(0, half)), "half_b": (every, every, slice(half, None))}


def _read(volume: str, name: str) -> np.ndarray:
    import h5py

    n = yx_limit()
    with h5py.File(SOURCES[volume], "r") as f:
        ds = f[name]
        return ds[:, :n, :n] if n else ds[:]


def _write(url: str, data: np.ndarray, channels: int | None = None, attrs=None) -> str:
    from pipeline.io.volume import create_volume

    shape = data.shape[1:] if channels else data.shape
    chunks = tuple(min(c, s) for c, s in zip(CHUNKS, shape, strict=True))
    vol = create_volume(
        url, shape, data.dtype, VOXEL, chunks=chunks, channels=channels, attrs=attrs
    )
    vol.write(vol.roi, data)
    return vol.url


def raw_url(volume: str) -> str:
    """The raw volume as Zarr with its 10 nm voxel size (cached)."""
    url = cache_root() / "raw" / f"{volume}.zarr" / "raw"
    if not (url / "zarr.json").exists():
        _write(str(url), _read(volume, "volumes/raw"))
    return str(url)


def tta() -> bool:
    return os.environ.get("PETASEG_BENCH_ACCURACY_TTA", "") not in ("", "0")


def model_tag(model: str) -> str:
    from models.checkpoint import file_checksum
    from models.zoo import model_path

    path = model_path(model)
    return f"{path.stem}-{file_checksum(path)[:8]}" + ("-tta" if tta() else "")


def prediction(model: str, volume: str) -> tuple[str, dict]:
    """The model's prediction of the whole volume (uint8, overlap 0: the models' context makes
    tiles seam-free) and its timing (cached with it)."""
    from workflows.cli.app import main as petaseg

    root = cache_root() / model_tag(model) / f"{volume}.zarr"
    url, meta = root / "pred", root.parent / f"{volume}-predict.json"
    if not meta.exists():
        note(f"predicting {model} over {volume} (cached afterwards in {root})")
        args = ["predict", "--model", model, "--input", raw_url(volume), "--output", str(url)]
        args += ["--overlap", "0", "--dtype", "uint8", "--cluster", "threads:1"]
        args += ["--tta"] if tta() else []
        t0 = time.perf_counter()
        with _stdout_to_stderr():
            if petaseg(args) != 0:
                raise RuntimeError(f"prediction of {model} over {volume} failed")
        seconds = time.perf_counter() - t0
        from pipeline.io.volume import open_volume

        voxels = int(np.prod(open_volume(str(url)).shape))
        meta.write_text(json.dumps({"seconds": seconds, "voxels": voxels}))
    return str(url), json.loads(meta.read_text())


class _stdout_to_stderr:
    """Keep a command's JSON off this benchmark's stdout (its last line is the result)."""

    def __enter__(self) -> None:
        self.saved = sys.stdout
        sys.stdout = sys.stderr

    def __exit__(self, *exc) -> None:
        sys.stdout = self.saved


def part_urls(model: str, volume: str) -> dict[str, tuple[str, str]]:
    """(prediction, neuron ids) Zarr URLs of each part of ``volume`` (cached crops)."""
    from pipeline.io.volume import open_volume

    pred_url, _ = prediction(model, volume)
    pred = open_volume(pred_url)
    out = {}
    gt = None
    for name, sl in parts(volume, pred.shape).items():
        p = cache_root() / model_tag(model) / f"{volume}-{name}.zarr" / "pred"
        g = cache_root() / "gt" / f"{volume}-{name}.zarr" / "neuron_ids"
        if not (p / "zarr.json").exists():
            data = pred.read()
            data = data[(slice(None), *sl)] if pred.channels else data[sl]
            _write(str(p), np.ascontiguousarray(data), pred.channels, _pred_attrs(pred.attrs))
        if not (g / "zarr.json").exists():
            gt = _read(volume, "volumes/labels/neuron_ids") if gt is None else gt
            _write(str(g), np.ascontiguousarray(gt[sl]).astype(np.uint64))
        out[name] = (str(p), str(g))
    return out


def _pred_attrs(attrs: dict) -> dict:
    return {k: attrs[k] for k in ("offsets", "value_scale", "value_offset", "output") if k in attrs}


def read_part(url: str) -> np.ndarray:
    from pipeline.io.volume import open_volume

    return open_volume(url).read()
