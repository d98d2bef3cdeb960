"""A PNG for a person to look at: the EM image with the prediction drawn on it (class colours
with a legend, instance masks, boxes labelled with class and score). matplotlib is imported
only here, when an overlay is drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PALETTE = (
    np.array(
        [
            [230, 25, 75],
            [60, 180, 75],
            [255, 225, 25],
            [0, 130, 200],
            [245, 130, 48],
            [145, 30, 180],
            [70, 240, 240],
            [240, 50, 230],
            [210, 245, 60],
            [250, 190, 190],
        ],
        np.float64,
    )
    / 255.0
)


def save_overlay(
    path: str | Path, image: np.ndarray, pred: dict, title: str = "", alpha: float = 0.4
) -> None:
    """Draw ``pred`` (from models.train2d.predict.predict_image) over ``image`` into ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    h, w = image.shape
    size = max(4.0, min(12.0, max(h, w) / 64))
    fig, ax = plt.subplots(figsize=(size, size * h / w), dpi=100)
    ax.imshow(image, cmap="gray", vmin=0, vmax=255)
    names = pred.get("class_names", [])
    if "classmap" in pred:
        rgb = PALETTE[pred["classmap"] % len(PALETTE)]
        ax.imshow(np.dstack([rgb, np.full((h, w), alpha)]))
        present = np.unique(pred["classmap"])
        ax.legend(
            handles=[Patch(color=PALETTE[c % len(PALETTE)], label=names[c]) for c in present],
            loc="upper right",
            fontsize=7,
            framealpha=0.7,
        )
    if "instances" in pred and pred["instances"].max() > 0:
        inst = pred["instances"]
        colours = np.random.default_rng(0).random((int(inst.max()) + 1, 3))
        rgba = np.dstack([colours[inst], np.where(inst > 0, alpha, 0.0)])
        ax.imshow(rgba)
    if "boxes" in pred:
        for b, s, lab in zip(pred["boxes"], pred["scores"], pred["labels"], strict=True):
            c = PALETTE[(int(lab) - 1) % len(PALETTE)]
            x1, y1, x2, y2 = (float(v) for v in b)
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.2, ec=c))
            ax.text(
                x1,
                y1 - 1,
                f"{names[int(lab) - 1]} {float(s):.2f}",
                color=c,
                fontsize=6,
                va="bottom",
            )
    if "box" in pred:
        x1, y1, x2, y2 = pred["box"]
        c = PALETTE[pred["label"] % len(PALETTE)]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.5, ec=c))
        p = max(pred["probabilities"])
        ax.text(x1, y1 - 1, f"{names[pred['label']]} {p:.2f}", color=c, fontsize=8, va="bottom")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
