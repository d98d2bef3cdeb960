"""2D EM training data from numpy sections: class maps, object instances and their boxes.

File reading lives in ``workflows.training.data2d``; everything here takes arrays of sections
``(n, y, x)`` so it runs on any source. Boxes are ``(x1, y1, x2, y2)`` in pixel-edge
coordinates (a one-pixel object at column 3 spans x 3..4), so no real object gives a degenerate
box. Instances are 2D connected components: mitochondria and synapses of the VNC labels, neuron
profiles of FIB sections (per-section components of each neuron id).
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np
import torch
from scipy import ndimage

from models.errors import InputError

ISBI_CLASSES = ("cell", "membrane")
VNC_CLASSES = ("membrane", "mitochondria", "synapse", "glia", "cytoplasm")
# labels/merged values: 0/32/64/96 = membrane at four orientations, 128 = junction, 159 = glia,
# 191 = mitochondria, 223 = synapse, 255 = intracellular
VNC_VALUES = {0: 0, 32: 0, 64: 0, 96: 0, 128: 0, 159: 3, 191: 1, 223: 2, 255: 4}
VNC_OBJECTS = ("mitochondria", "synapse")  # detection classes 1 and 2 (0 = background)
FIB_OBJECTS = ("neuron_profile",)


def isbi_classes(labels: np.ndarray) -> np.ndarray:
    """ISBI labels (255 = cell interior, 0 = membrane) as class ids (0 = cell, 1 = membrane)."""
    values = np.unique(labels)
    if not set(values.tolist()) <= {0, 255}:
        raise InputError(
            f"ISBI membrane labels must be 0 (membrane) or 255 (cell); found values {values[:10]}"
        )
    return (labels == 0).astype(np.uint8)


def vnc_classes(merged: np.ndarray) -> np.ndarray:
    """VNC ``labels/merged`` values as class ids in the order of :data:`VNC_CLASSES`."""
    lut = np.full(256, 255, np.uint8)
    for value, cls in VNC_VALUES.items():
        lut[value] = cls
    if merged.dtype != np.uint8:
        raise InputError(f"VNC merged labels must be uint8, got {merged.dtype}")
    out = lut[merged]
    if (out == 255).any():
        bad = np.unique(merged[out == 255])[:10]
        raise InputError(
            f"VNC merged labels hold unknown values {bad}; expected {sorted(VNC_VALUES)}"
        )
    return out


def downsample(images: np.ndarray, factor: int, labels: bool = False) -> np.ndarray:
    """Downsample the y, x axes of ``(n, y, x)`` by an integer factor: block mean for raw data,
    the top-left pixel of each block for labels (labels must not be averaged)."""
    if factor == 1:
        return images
    n, h, w = images.shape
    h, w = h - h % factor, w - w % factor
    if labels:
        return np.ascontiguousarray(images[:, :h:factor, :w:factor])
    blocks = images[:, :h, :w].reshape(n, h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(2, 4)).round().astype(images.dtype)


def instances_from_mask(mask: np.ndarray, min_area: int = 1) -> np.ndarray:
    """8-connected components of a 2D boolean mask as an int32 instance image (0 = none),
    components smaller than ``min_area`` pixels removed, ids consecutive from 1."""
    cc = cc3d.connected_components(np.ascontiguousarray(mask, dtype=np.uint8), connectivity=8)
    return _drop_small(cc, min_area)


def instances_from_ids(ids: np.ndarray, min_area: int = 1) -> np.ndarray:
    """Per-id 4-connected components of a 2D label image (a neuron id can cross a section
    several times: each crossing is one profile). Id 0 stays background."""
    cc = cc3d.connected_components(np.ascontiguousarray(ids), connectivity=4)
    return _drop_small(cc, min_area)


def _drop_small(cc: np.ndarray, min_area: int) -> np.ndarray:
    counts = np.bincount(cc.ravel())
    keep = counts >= max(1, min_area)
    keep[0] = False
    lut = np.zeros(counts.size, np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[cc]


@dataclass
class InstanceSections:
    """Sections with object instances: ``instances[i]`` is an int32 image (0 = background) and
    ``classes[i][k]`` the class (1-based) of instance ``k`` of section ``i``."""

    images: np.ndarray  # (n, y, x) uint8
    instances: np.ndarray  # (n, y, x) int32
    classes: list[np.ndarray]
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)


def vnc_instances(
    images: np.ndarray, classmaps: np.ndarray, min_area: int = 20, objects=VNC_OBJECTS
) -> InstanceSections:
    """Mitochondria and synapses of VNC class maps as instances (class 1, 2, ...)."""
    inst = np.zeros(classmaps.shape, np.int32)
    classes = []
    for i, cmap in enumerate(classmaps):
        cls_of = [0]
        for c, name in enumerate(objects, start=1):
            comp = instances_from_mask(cmap == VNC_CLASSES.index(name), min_area)
            n = int(comp.max())
            inst[i][comp > 0] = comp[comp > 0] + len(cls_of) - 1
            cls_of += [c] * n
        classes.append(np.asarray(cls_of, np.int64))
    return InstanceSections(images, inst, classes, tuple(objects))


def fib_instances(
    images: np.ndarray, neuron_ids: np.ndarray, min_area: int = 64
) -> InstanceSections:
    """Neuron profiles: 2D connected components of each neuron id per section (class 1)."""
    if images.shape != neuron_ids.shape:
        raise InputError(f"raw {images.shape} and neuron ids {neuron_ids.shape} differ in shape")
    inst = np.stack([instances_from_ids(s, min_area) for s in neuron_ids])
    classes = [np.r_[0, np.ones(int(s.max()), np.int64)] for s in inst]
    return InstanceSections(images, inst, classes, FIB_OBJECTS)


def instance_targets(instances: np.ndarray, classes: np.ndarray, min_area: int = 1, masks=True):
    """Boxes (x1, y1, x2, y2; pixel edges), labels and optionally masks of the instances in a
    2D instance image (a tile may cut objects: pieces under ``min_area`` are dropped)."""
    counts = np.bincount(instances.ravel(), minlength=len(classes))
    ids = [k for k in range(1, len(counts)) if counts[k] >= max(1, min_area)]
    slices = ndimage.find_objects(instances)
    boxes = np.zeros((len(ids), 4), np.float32)
    for j, k in enumerate(ids):
        sy, sx = slices[k - 1]
        boxes[j] = (sx.start, sy.start, sx.stop, sy.stop)
    target = {
        "boxes": torch.from_numpy(boxes),
        "labels": torch.as_tensor(np.asarray(classes)[ids] if ids else [], dtype=torch.int64),
    }
    if masks:
        ids_arr = np.asarray(ids, np.int32).reshape(-1, 1, 1)
        target["masks"] = torch.from_numpy((instances[None] == ids_arr).astype(np.uint8))
    return target


def to_float(images: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """uint8 pixels -> float tensor ``(u8 / 255 - mean) / std``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0
    return (x - mean) / std


def intensity_stats(images: np.ndarray) -> dict:
    """Mean and std of the pixels scaled to [0, 1]: the model's input normalisation."""
    x = images.astype(np.float64) / 255.0
    return {"mean": float(x.mean()), "std": float(max(x.std(), 1e-3))}


def section_targets(data: InstanceSections, index: int, min_area: int = 1, masks: bool = True):
    """A whole section as detector input and its full target (for evaluation)."""
    image = torch.from_numpy(data.images[index].copy()).float()[None] / 255.0
    return image, instance_targets(data.instances[index], data.classes[index], min_area, masks)


@dataclass
class LocalizationSet:
    """Crops with exactly one object each: class (0-based) and box ``(cx, cy, w, h)`` as
    fractions of the crop size."""

    crops: np.ndarray  # (n, crop, crop) uint8
    labels: np.ndarray  # (n,) int64
    boxes: np.ndarray  # (n, 4) float32
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.crops)


def localization_crops(
    data: InstanceSections,
    crop: int,
    rng: np.random.Generator,
    centered: bool = False,
    max_other: float = 0.25,
    tries: int = 10,
) -> LocalizationSet:
    """One crop per object that fits in ``crop`` pixels.

    ``centered=False`` (sparse objects such as mitochondria): the object lies anywhere in the
    crop, and crops where another object shows more than ``max_other`` of its area are skipped,
    so each crop holds one object. ``centered=True`` (dense neuron profiles, where every crop
    is full of objects): the crop is centred on a random pixel of the object, so the target is
    "the profile under the centre of the crop" (pixel ``crop // 2``), a well-posed question.
    """
    crops, labels, boxes = [], [], []
    n, h, w = data.images.shape
    for z in range(n):
        inst = data.instances[z]
        areas = np.bincount(inst.ravel())
        for k, sl in enumerate(ndimage.find_objects(inst), start=1):
            if sl is None:
                continue
            y1, y2, x1, x2 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
            bh, bw = y2 - y1, x2 - x1
            if bh > crop or bw > crop or crop > h or crop > w:
                continue
            for _ in range(tries):
                lo_y, hi_y = max(0, y2 - crop), min(y1, h - crop)  # crop origins that hold
                lo_x, hi_x = max(0, x2 - crop), min(x1, w - crop)  # the whole object
                if lo_y > hi_y or lo_x > hi_x:
                    break
                if centered:  # origins whose centre pixel lies on the object
                    py, px = np.nonzero(inst[sl] == k)
                    oy_all, ox_all = py + y1 - crop // 2, px + x1 - crop // 2
                    ok = (oy_all >= lo_y) & (oy_all <= hi_y) & (ox_all >= lo_x) & (ox_all <= hi_x)
                    if not ok.any():
                        break
                    j = int(rng.choice(np.flatnonzero(ok)))
                    oy, ox = int(oy_all[j]), int(ox_all[j])
                else:
                    oy, ox = int(rng.integers(lo_y, hi_y + 1)), int(rng.integers(lo_x, hi_x + 1))
                window = inst[oy : oy + crop, ox : ox + crop]
                if not centered:
                    inside = np.bincount(window.ravel(), minlength=areas.size)
                    frac = inside / np.maximum(areas, 1)
                    frac[0], frac[k] = 0, 0
                    if frac.max(initial=0) > max_other:
                        continue
                crops.append(data.images[z, oy : oy + crop, ox : ox + crop])
                labels.append(int(data.classes[z][k]) - 1)
                cx, cy = ((x1 + x2) / 2 - ox) / crop, ((y1 + y2) / 2 - oy) / crop
                boxes.append((cx, cy, bw / crop, bh / crop))
                break
    if not crops:
        raise InputError(f"no object fits in a {crop}x{crop} crop; use a larger --crop")
    return LocalizationSet(
        np.stack(crops),
        np.asarray(labels, np.int64),
        np.asarray(boxes, np.float32),
        data.class_names,
    )
