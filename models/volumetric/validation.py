"""Validation of a volumetric network on a held-out volume: loss, F1 at 0.5 and average
precision of its whole (tiled) prediction, and the plots a person checks a run by."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.base import Network
from models.volumetric.losses import masked_loss
from models.volumetric.metrics import average_precision, f1_score
from models.volumetric.predict import predict_volume
from models.volumetric.targets import affinities, boundary_map


def validate(
    model: Network, raw: np.ndarray, labels: np.ndarray, loss_name: str, precision: str = "fp32"
) -> dict:
    """Loss, F1 at 0.5 and average precision on a held-out volume (whole, tiled prediction)."""
    pred = predict_volume(model, raw, precision=precision)
    if model.spec.output == "affinity":
        target, mask = affinities(labels, model.spec.offsets)
    else:
        target, mask = boundary_map(labels)
        target, mask = target[None], mask[None]
    p = torch.from_numpy(pred)
    with torch.no_grad():
        loss = masked_loss(
            loss_name, torch.logit(p, eps=1e-6), torch.from_numpy(target), torch.from_numpy(mask)
        )
    f1 = f1_score(pred, target, mask, 0.5)
    return {
        "loss": float(loss),
        "f1": f1["f1"],
        "precision": f1["precision"],
        "recall": f1["recall"],
        "ap": average_precision(pred, target, mask),
        "pred": pred,
        "target": target,
    }


@dataclass
class HeldOut:
    """The held-out volume of a run, and the folder its plots go to."""

    raw: np.ndarray
    labels: np.ndarray
    plot_dir: Path


def plot_validation(history: dict, held_out: HeldOut, scores: dict, iteration: int) -> None:
    """The loss curves and the middle held-out section (raw, target, prediction) as PNGs;
    ImportError without matplotlib."""
    from models.volumetric.plots import plot_curves, plot_slice

    held_out.plot_dir.mkdir(parents=True, exist_ok=True)
    plot_curves(history, held_out.plot_dir / "loss.png")
    z = held_out.raw.shape[0] // 2
    plot_slice(
        held_out.raw[z],
        scores["target"][0][z],
        scores["pred"][0][z],
        held_out.plot_dir / "val_slice.png",
        f"held-out section {z}, iteration {iteration}",
    )
