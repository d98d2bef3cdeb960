"""PNG figures of a training run (matplotlib, imported only when plotting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: dict, path: Path) -> None:
    """Training loss (raw and smoothed), validation loss, and validation F1 / AP by iteration."""
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=80)
    it, loss = np.asarray(history["iteration"]), np.asarray(history["loss"])
    if loss.size:
        ax.plot(it, loss, color="0.8", lw=0.5, label="train (batch)")
        k = max(1, min(50, loss.size // 10))
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(it[k - 1 :], smooth, color="C0", label=f"train (mean of {k})")
    val = history.get("val", [])
    if val:
        vi = [v["iteration"] for v in val]
        ax.plot(vi, [v["loss"] for v in val], "o-", color="C1", label="validation")
        ax2.plot(vi, [v["f1"] for v in val], "o-", label="boundary F1 @ 0.5")
        ax2.plot(vi, [v["ap"] for v in val], "s-", label="average precision")
        ax2.set_ylim(0, 1)
        ax2.legend(fontsize=8)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    ax2.set_xlabel("iteration")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_slice(raw: np.ndarray, target: np.ndarray, pred: np.ndarray, path: Path, title: str = ""):
    """One section side by side: raw | target | prediction."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2), dpi=80)
    for ax, img, name in zip(
        axes, (raw, target, pred), ("raw", "target", "prediction"), strict=True
    ):
        ax.imshow(
            img, cmap="gray", vmin=None if name == "raw" else 0, vmax=None if name == "raw" else 1
        )
        ax.set_title(name)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
