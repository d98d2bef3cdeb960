"""Reading 2D EM training data (the file side of ``models.train2d.data``) and writing 2D
predictions. ``models/`` never opens files; this module reads sections into numpy arrays.

Presets name the shared real data sets and their held-out parts:

- ``isbi``: ISBI 2012 sections 0-23 (membrane vs cell); 24-29 are held out of shared/ and
  never read. Train 0-19, evaluate 20-23.
- ``vnc``: Drosophila VNC stack 1, 20 sections (five classes, mitochondria/synapse objects).
  No official held-out part: train 0-15, evaluate 16-19.
- ``fib``: FIB medulla training_sample2 z 0-159 (neuron ids -> 2D profiles); z >= 160 is held
  out of shared/ and never read. Train 0-129, evaluate 130-159.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import InputError

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class Preset:
    raw: str
    labels: str
    train: tuple[int, int]  # sections [begin, end)
    val: tuple[int, int]
    scale: int  # default downsampling of y, x for detection-type tasks


PRESETS = {
    "isbi": Preset(
        "isbi2012/isbi2012_train.h5/volumes/raw",
        "isbi2012/isbi2012_train.h5/volumes/labels/membrane",
        (0, 20),
        (20, 24),
        1,
    ),
    "vnc": Preset(
        "drosophila_vnc_sstem/vnc_stack1.h5/volumes/raw",
        "drosophila_vnc_sstem/vnc_stack1.h5/volumes/labels/merged",
        (0, 16),
        (16, 20),
        2,
    ),
    "fib": Preset(
        "fib_medulla_flyem/fib_medulla_train.h5/volumes/raw",
        "fib_medulla_flyem/fib_medulla_train.h5/volumes/labels/neuron_ids",
        (0, 130),
        (130, 160),
        1,
    ),
}
FIB_HELD_OUT_Z = 160  # training_sample2 z >= 160 must never be trained on


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise InputError(f"--data {name!r} is unknown; use one of {sorted(PRESETS)}")
    return PRESETS[name]


def preset_url(name: str, which: str) -> str:
    """The shared-data URL of a preset's raw or labels, or a clear error when absent."""
    p = preset(name)
    rel = p.raw if which == "raw" else p.labels
    path = SHARED_DATA / rel.split(".h5/")[0]
    if not Path(str(path) + ".h5").is_file():
        raise InputError(
            f"--data {name}: {path}.h5 is not there (../shared/data is absent); give --raw and "
            "--labels URLs instead"
        )
    return str(SHARED_DATA / rel)


def read_sections(url: str, begin: int | None = None, end: int | None = None) -> np.ndarray:
    """Sections ``[begin, end)`` (z) of a volume URL (HDF5, Zarr, TIFF stack, precomputed), or
    one 2D image file (.png/.tif) as a stack of one."""
    if url.lower().endswith((".png", ".jpg", ".jpeg")) or (
        url.lower().endswith((".tif", ".tiff")) and Path(url).is_file() and _is_2d_tiff(url)
    ):
        return read_image(url)[None]
    from pipeline.geometry import Roi
    from pipeline.io.volume import open_volume

    vol = open_volume(url)
    if vol.channels:
        raise InputError(f"{url}: has {vol.channels} channels; give a single-channel volume")
    n = vol.shape[0]
    b, e = 0 if begin is None else begin, n if end is None else end
    if not 0 <= b < e <= n:
        raise InputError(f"{url}: sections [{b}, {e}) are outside its z range [0, {n})")
    vs, off = vol.voxel_size, vol.offset
    roi = Roi(
        (off[0] + b * vs[0], off[1], off[2]),
        ((e - b) * vs[0], vol.shape[1] * vs[1], vol.shape[2] * vs[2]),
    )
    return vol.read(roi)


def _is_2d_tiff(path: str) -> bool:
    import tifffile

    with tifffile.TiffFile(path) as t:
        return len(t.pages) == 1 and t.pages[0].ndim in (2, 3)


def read_image(path: str) -> np.ndarray:
    """A 2D image file as uint8 (y, x). Colour images are refused with a clear message: the
    models take one grayscale channel, as EM is."""
    from skimage import io

    if not Path(path).is_file():
        raise InputError(f"{path}: no such image file")
    img = np.asarray(io.imread(path))
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        rgb = img[..., :3]
        if np.all(rgb == rgb[..., :1]):
            img = rgb[..., 0]
        else:
            raise InputError(
                f"{path} is an RGB image with colour; the 2D models take grayscale EM. Convert it "
                "to one channel (e.g. skimage.color.rgb2gray) first"
            )
    if img.ndim != 2:
        raise InputError(f"{path}: expected a 2D grayscale image, got shape {img.shape}")
    if img.dtype != np.uint8:
        lo, hi = float(img.min()), float(img.max())
        img = ((img - lo) / max(hi - lo, 1e-9) * 255).round().astype(np.uint8)
    return img


def load_preset(name: str, split: str, raw_url: str | None = None, labels_url: str | None = None):
    """(raw, labels) sections of a preset's ``train`` or ``val`` split; URLs override the files
    but keep the preset's label meaning and split."""
    p = preset(name)
    if split not in ("train", "val"):
        raise InputError(f"split {split!r}; use 'train' or 'val'")
    begin, end = p.train if split == "train" else p.val
    if name == "fib" and end > FIB_HELD_OUT_Z:
        raise InputError("FIB sections z >= 160 are held out and must not be read")
    raw = read_sections(raw_url or preset_url(name, "raw"), begin, end)
    labels = read_sections(labels_url or preset_url(name, "labels"), begin, end)
    if raw.shape != labels.shape:
        raise InputError(f"raw {raw.shape} and labels {labels.shape} differ in shape")
    return raw, labels


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1))


def write_png(path: Path, image: np.ndarray) -> None:
    from skimage import io

    path.parent.mkdir(parents=True, exist_ok=True)
    io.imsave(str(path), image, check_contrast=False)


def semantic_data(
    name: str, split: str, raw_url: str | None = None, labels_url: str | None = None, scale: int = 1
):
    """(images, class maps, class names) of a semantic-segmentation preset (isbi, vnc)."""
    from models.train2d.data import ISBI_CLASSES, VNC_CLASSES, downsample, isbi_classes, vnc_classes

    raw, labels = load_preset(name, split, raw_url, labels_url)
    if name == "isbi":
        cmap, classes = isbi_classes(labels), ISBI_CLASSES
    elif name == "vnc":
        cmap, classes = vnc_classes(labels), VNC_CLASSES
    else:
        raise InputError(f"--data {name}: semantic segmentation needs class labels (isbi or vnc)")
    return downsample(raw, scale), downsample(cmap, scale, labels=True), classes


def instance_data(
    name: str,
    split: str,
    raw_url: str | None = None,
    labels_url: str | None = None,
    scale: int | None = None,
    min_area: int | None = None,
    objects: tuple[str, ...] | None = None,
):
    """Object instances of a preset: VNC mitochondria + synapses (or the ``objects`` named), or
    FIB neuron profiles."""
    from models.train2d.data import (
        VNC_OBJECTS,
        downsample,
        fib_instances,
        vnc_classes,
        vnc_instances,
    )

    p = preset(name)
    scale = p.scale if scale is None else scale
    raw, labels = load_preset(name, split, raw_url, labels_url)
    if name == "vnc":
        cmap = downsample(vnc_classes(labels), scale, labels=True)
        area = 80 // (scale * scale) if min_area is None else min_area
        objects = tuple(objects or VNC_OBJECTS)
        if not set(objects) <= set(VNC_OBJECTS):
            raise InputError(f"VNC objects {objects}: choose from {VNC_OBJECTS}")
        return vnc_instances(downsample(raw, scale), cmap, min_area=area, objects=objects)
    if name == "fib":
        ids = downsample(labels, scale, labels=True)
        area = 64 // (scale * scale) if min_area is None else min_area
        return fib_instances(downsample(raw, scale), ids, min_area=area)
    raise InputError(f"--data {name}: objects come from 'vnc' (mitochondria, synapses) or 'fib'")
