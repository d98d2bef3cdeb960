"""One prediction call for any 2D task model on one grayscale uint8 image: the arrays a person
or a later stage needs (class map, boxes, instance labels) and a JSON-able summary."""

from __future__ import annotations

import numpy as np
import torch

from models.errors import InputError
from models.tasks.instance import masks_to_label_image
from models.train2d.data import to_float


def predict_image(model, image: np.ndarray, score_thresh: float = 0.5) -> dict:
    """``image``: (H, W) uint8. Returns a dict with ``task`` and, by task: ``classmap`` and
    ``probabilities`` (semantic, patch); ``boxes``/``scores``/``labels`` (detectors, at or
    above ``score_thresh``) and ``instances`` (Mask R-CNN); ``label``/``box``/``probabilities``
    (localization, the box in pixels)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        raise InputError("the 2D models take grayscale images; convert RGB to one channel first")
    if image.ndim != 2 or image.dtype != np.uint8:
        raise InputError(f"expected a 2D uint8 image, got shape {image.shape} dtype {image.dtype}")
    task = model.task
    out: dict = {"task": task, "class_names": list(model.class_names)}
    if task in ("semantic", "patch"):
        x = to_float(image[None, None], model.mean, model.std)
        if task == "semantic":
            prob = model.predict(x)[0]
        else:
            prob = torch.softmax(model.dense(x)[0], 0)
        out["probabilities"] = prob.numpy()
        out["classmap"] = prob.argmax(0).numpy().astype(np.uint8)
        return out
    if task == "localize":  # pad bottom/right to the stride: pixel coordinates stay the same
        m = model.encoder.size_multiple[0]
        padded = np.pad(image, ((0, -image.shape[0] % m), (0, -image.shape[1] % m)), mode="reflect")
        label, prob, box = model.predict(to_float(padded[None, None], model.mean, model.std))
        h, w = padded.shape
        cx, cy, bw, bh = box[0].tolist()
        out["label"] = int(label[0])
        out["probabilities"] = prob[0].tolist()
        out["box"] = [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h]
        return out
    if task in ("detect", "grid_detect", "instance"):
        x = torch.from_numpy(image.copy()).float()[None] / 255.0
        pred = model.predict([x])[0]
        keep = pred["scores"] >= score_thresh
        out["boxes"] = pred["boxes"][keep].numpy()
        out["scores"] = pred["scores"][keep].numpy()
        out["labels"] = pred["labels"][keep].numpy()
        if task == "instance":
            out["instances"] = masks_to_label_image(pred, image.shape, score_thresh)
        return out
    raise InputError(f"model task {task!r} has no 2D prediction")


def summary(pred: dict) -> dict:
    """The JSON-able part of a prediction (no images)."""
    s = {"task": pred["task"], "class_names": pred["class_names"]}
    if "classmap" in pred:
        counts = np.bincount(pred["classmap"].ravel(), minlength=len(pred["class_names"]))
        s["pixel_fraction"] = {
            n: float(c / counts.sum()) for n, c in zip(pred["class_names"], counts, strict=True)
        }
    if "boxes" in pred:
        s["detections"] = [
            {
                "box": [round(float(v), 2) for v in b],
                "score": float(sc),
                "label": int(lab),
                "class": pred["class_names"][int(lab) - 1],
            }
            for b, sc, lab in zip(pred["boxes"], pred["scores"], pred["labels"], strict=True)
        ]
    if "instances" in pred:
        s["n_instances"] = int(pred["instances"].max())
    if "box" in pred:
        s.update(
            label=pred["label"],
            **{"class": pred["class_names"][pred["label"]]},
            box=pred["box"],
            probabilities=pred["probabilities"],
        )
    return s
