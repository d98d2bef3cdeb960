"""Random augmented training batches of the 2D tasks, drawn from numpy sections: tiles for the
semantic and detection models, single-object crops for the localizer, centre-pixel patches for
the sliding-window baseline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from models.errors import InputError
from models.tasks.sliding_window import BEFORE, PATCH
from models.train2d.data import InstanceSections, LocalizationSet, instance_targets, to_float


def augment_pair(image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
    """The same random flip / 90-degree rotation of a 2D image and its label image."""
    k = int(rng.integers(4))
    image, label = np.rot90(image, k), np.rot90(label, k)
    if rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


def random_tile(shape: Sequence[int], tile: int, rng: np.random.Generator):
    """(section, y, x) of a random ``tile`` x ``tile`` window in a stack of ``shape``."""
    n, h, w = shape
    if tile > h or tile > w:
        raise InputError(
            f"tile size {tile} is larger than the sections ({h}x{w}); use a smaller tile"
        )
    return int(rng.integers(n)), int(rng.integers(h - tile + 1)), int(rng.integers(w - tile + 1))


def semantic_batch(
    images: np.ndarray,
    classmaps: np.ndarray,
    tile: int,
    batch: int,
    rng: np.random.Generator,
    norm: dict,
    augment: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random augmented tiles: ``x`` (batch, 1, tile, tile) float and ``y`` (batch, tile, tile)."""
    xs, ys = [], []
    for _ in range(batch):
        z, y0, x0 = random_tile(images.shape, tile, rng)
        img = images[z, y0 : y0 + tile, x0 : x0 + tile]
        lab = classmaps[z, y0 : y0 + tile, x0 : x0 + tile]
        if augment:
            img, lab = augment_pair(img, lab, rng)
        xs.append(img)
        ys.append(lab)
    x = to_float(np.stack(xs)[:, None], norm["mean"], norm["std"])
    return x, torch.from_numpy(np.stack(ys).astype(np.int64))


def detection_batch(
    data: InstanceSections,
    tile: int,
    batch: int,
    rng: np.random.Generator,
    min_area: int = 20,
    masks: bool = False,
    augment: bool = True,
) -> tuple[list[torch.Tensor], list[dict]]:
    """Random tiles as detector input: images (1, tile, tile) in [0, 1] and target dicts
    (boxes, labels[, masks]); a tile may hold no object (empty boxes)."""
    images, targets = [], []
    for _ in range(batch):
        z, y0, x0 = random_tile(data.images.shape, tile, rng)
        img = data.images[z, y0 : y0 + tile, x0 : x0 + tile]
        inst = data.instances[z, y0 : y0 + tile, x0 : x0 + tile]
        if augment:
            img, inst = augment_pair(img, inst, rng)
        images.append(torch.from_numpy(img.copy()).float()[None] / 255.0)
        targets.append(instance_targets(inst, data.classes[z], min_area, masks))
    return images, targets


def augment_crop(crop: np.ndarray, box: np.ndarray, rng: np.random.Generator):
    """A random 90-degree rotation / horizontal flip of a square crop and its (cx, cy, w, h)."""
    cx, cy, w, h = (float(v) for v in box)
    for _ in range(int(rng.integers(4))):  # np.rot90: (x, y) -> (y, 1 - x)
        crop = np.rot90(crop)
        cx, cy, w, h = cy, 1.0 - cx, h, w
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
        cx = 1.0 - cx
    return np.ascontiguousarray(crop), np.asarray((cx, cy, w, h), np.float32)


def localization_batch(
    data: LocalizationSet, batch: int, rng: np.random.Generator, norm: dict, augment: bool = True
):
    """Random crops of a :class:`LocalizationSet`: (x, labels, boxes)."""
    idx = rng.integers(len(data), size=batch)
    crops, boxes = [], []
    for i in idx:
        c, b = data.crops[i], data.boxes[i]
        if augment:
            c, b = augment_crop(c, b, rng)
        crops.append(c)
        boxes.append(b)
    x = to_float(np.stack(crops)[:, None], norm["mean"], norm["std"])
    return x, torch.from_numpy(data.labels[idx]), torch.from_numpy(np.stack(boxes))


def patch_batch(
    images: np.ndarray,
    classmaps: np.ndarray,
    batch: int,
    rng: np.random.Generator,
    norm: dict,
    augment: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random patches (batch, 1, PATCH, PATCH) normalised, and their centre-pixel classes."""
    n, h, w = images.shape
    z = rng.integers(n, size=batch)
    y = rng.integers(h - PATCH + 1, size=batch)
    x = rng.integers(w - PATCH + 1, size=batch)
    patches = np.stack(
        [images[a, b : b + PATCH, c : c + PATCH] for a, b, c in zip(z, y, x, strict=True)]
    )
    labels = classmaps[z, y + BEFORE, x + BEFORE].astype(np.int64)
    if augment:  # transposition keeps the labelled pixel (BEFORE, BEFORE) in place; flips do not
        t = rng.random(batch) < 0.5
        patches[t] = patches[t].transpose(0, 2, 1)
    return to_float(patches[:, None], norm["mean"], norm["std"]), torch.from_numpy(labels)
