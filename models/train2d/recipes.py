"""Train-and-evaluate recipes of the 2D tasks on numpy sections: what ``petaseg train2d`` and
``benchmarks/bench_2d.py`` share. Training samples random augmented tiles of the training
sections; evaluation runs on whole held-out sections."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage

from models.errors import InputError
from models.train2d.batches import (
    detection_batch,
    localization_batch,
    patch_batch,
    semantic_batch,
)
from models.train2d.data import (
    InstanceSections,
    LocalizationSet,
    intensity_stats,
    section_targets,
    to_float,
)
from models.train2d.fit import fit, to_device
from models.train2d.metrics import (
    coco_map,
    confusion_matrix,
    localization_scores,
    segmentation_scores,
)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _rng(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


# -- semantic ---------------------------------------------------------------------------------
def train_semantic(
    images: np.ndarray,
    classmaps: np.ndarray,
    class_names,
    arch: str = "unet",
    up: str = "transposed",
    iterations: int = 300,
    batch: int = 4,
    tile: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    log: Callable | None = None,
    device=None,
    **model_kw,
):
    from models.tasks.semantic import SemanticNet

    rng = _rng(seed)
    norm = intensity_stats(images)
    model = SemanticNet(class_names, arch, up, normalization=norm, **model_kw)
    if tile % model.size_multiple:
        raise InputError(
            f"--tile {tile} must be a multiple of the network's stride {model.size_multiple}"
        )
    hist = fit(
        model,
        lambda it: semantic_batch(images, classmaps, tile, batch, rng, norm),
        iterations,
        lr,
        log=log,
        device=device,
    )
    return model, hist


def evaluate_semantic(model, images: np.ndarray, classmaps: np.ndarray) -> dict:
    """mIoU / Dice over whole held-out sections and inference pixels/s."""
    n_classes = len(model.class_names)
    conf = np.zeros((n_classes, n_classes), np.int64)
    device = model_device(model)
    t0 = time.perf_counter()
    for img, cmap in zip(images, classmaps, strict=True):
        x = to_float(img[None, None], model.mean, model.std).to(device)
        pred = model.predict(x)[0].argmax(0).cpu().numpy()
        conf += confusion_matrix(pred, cmap, n_classes)
    seconds = time.perf_counter() - t0
    scores = segmentation_scores(conf, model.class_names)
    scores["pixels_per_s"] = float(images.size / seconds)
    return scores


# -- sliding-window baseline -------------------------------------------------------------------
def train_patch_classifier(
    images, classmaps, class_names, iterations=300, batch=64, lr=1e-3, seed=0, log=None, device=None
):
    from models.tasks.sliding_window import PatchClassifier

    rng = _rng(seed)
    norm = intensity_stats(images)
    model = PatchClassifier(class_names, normalization=norm)
    hist = fit(
        model,
        lambda it: patch_batch(images, classmaps, batch, rng, norm),
        iterations,
        lr,
        log=log,
        device=device,
    )
    return model, hist


# -- localization -----------------------------------------------------------------------------
def train_localizer(
    data: LocalizationSet,
    iterations=300,
    batch=16,
    lr=1e-3,
    seed=0,
    log=None,
    device=None,
    **model_kw,
):
    from models.tasks.localize import Localizer

    rng = _rng(seed)
    norm = intensity_stats(data.crops)
    model = Localizer(data.class_names, normalization=norm, **model_kw)
    hist = fit(
        model,
        lambda it: localization_batch(data, batch, rng, norm),
        iterations,
        lr,
        log=log,
        device=device,
    )
    return model, hist


def evaluate_localizer(model, data: LocalizationSet) -> dict:
    x = to_float(data.crops[:, None], model.mean, model.std)
    device = model_device(model)
    labels, boxes = [], []
    for i in range(0, len(x), 256):
        lab, _, box = model.predict(x[i : i + 256].to(device))
        labels.append(lab.cpu())
        boxes.append(box.cpu())
    return localization_scores(torch.cat(labels), torch.cat(boxes), data.labels, data.boxes)


# -- detection and instance segmentation ------------------------------------------------------
def build_detection_model(kind: str, data: InstanceSections, **kw):
    """``kind``: "two_stage" (Faster R-CNN), "grid" (single shot) or "instance" (Mask R-CNN),
    on our encoder + FPN, normalised with the training sections' statistics."""
    from models.tasks.detect_grid import build_grid_detector, fit_anchors
    from models.tasks.detect_two_stage import build_two_stage
    from models.tasks.instance import build_mask_rcnn

    norm = intensity_stats(data.images)
    n = len(data.class_names)
    if kind == "two_stage":
        return build_two_stage(n, class_names=data.class_names, normalization=norm, **kw)
    if kind == "instance":
        return build_mask_rcnn(n, class_names=data.class_names, normalization=norm, **kw)
    if kind == "grid":
        if "anchors" not in kw:
            wh = []
            for inst in data.instances[: min(len(data), 8)]:
                for sl in ndimage.find_objects(inst):
                    if sl is not None:
                        wh.append((sl[1].stop - sl[1].start, sl[0].stop - sl[0].start))
            if len(wh) >= 3:
                kw["anchors"] = fit_anchors(np.asarray(wh), 3)
        return build_grid_detector(n, class_names=data.class_names, normalization=norm, **kw)
    raise InputError(f"detector kind {kind!r} is unknown; use 'two_stage', 'grid' or 'instance'")


def train_detection(
    model,
    data: InstanceSections,
    iterations=300,
    batch=2,
    tile=256,
    lr=1e-3,
    seed=0,
    masks: bool = False,
    min_area: int = 20,
    log=None,
    to_input=None,
    device=None,
):
    """Train on random augmented tiles (tiles without objects included). ``to_input`` maps the
    image list before the model sees it (e.g. gray -> 3 channels for a stock RGB model)."""
    rng = _rng(seed)
    tile = min(tile, data.images.shape[1], data.images.shape[2])

    def next_batch(it):
        images, targets = detection_batch(data, tile, batch, rng, min_area, masks)
        return (to_input(images) if to_input else images), targets

    return fit(model, next_batch, iterations, lr, log=log, device=device)


def detect_all(model, data: InstanceSections, masks: bool = False, to_input=None):
    """Predictions and full targets for every section, and inference images/s."""
    preds, targets = [], []
    device = model_device(model)
    t0 = time.perf_counter()
    for i in range(len(data)):
        image, target = section_targets(data, i, masks=masks)
        inp = to_input([image.to(device)]) if to_input else [image.to(device)]
        preds.append(to_device(model.predict(inp)[0], "cpu"))
        targets.append(target)
    return preds, targets, len(data) / (time.perf_counter() - t0)


def evaluate_detection(model, data: InstanceSections, masks: bool = False, to_input=None) -> dict:
    preds, targets, ips = detect_all(model, data, masks, to_input)
    scores = coco_map(preds, targets, masks=masks)
    scores["infer_images_per_s"] = ips
    scores["image_size"] = list(data.images.shape[1:])
    return scores
