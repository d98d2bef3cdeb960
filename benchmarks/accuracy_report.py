"""What ``petaseg bench accuracy`` reports: each curve set scored with settings chosen without
the scored data, the models' FLOPs and inference speed, the sweep-curve PNG, and the figures of
a ``petaseg run`` of the FIB example workflow (whole volume and z 130-159)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.evaluate.choice import cross_validate, held_out

FIB_TEST = slice(130, 160)


def _plain(setting: Any) -> Any:
    return list(setting) if isinstance(setting, tuple) else setting


def _named(rec: dict, first: str) -> dict:
    """``setting`` -> ``threshold`` (the last value of a (bias, threshold) pair; with
    ``bias_long``); a multicut's setting is its ``beta``."""
    out = dict(rec)
    for key, prefix in (("setting", ""), ("oracle_setting", "oracle_")):
        s = out.pop(key)
        if isinstance(s, tuple):
            out[f"{prefix}{first}"], out[f"{prefix}threshold"] = s
        else:
            out[f"{prefix}threshold"] = s
    return out


def score_volume(volume: str, per_part: dict[str, dict], first: str) -> dict[str, Any]:
    """FIB: chosen on z 0-99 (the cross-validated ``train_cv`` curve when there is one, else
    train_a and train_b pooled), scored on ``test``. gala: two folds over the halves."""
    if volume == "fib":
        choose_on = per_part.get("train_cv") or [per_part["train_a"], per_part["train_b"]]
        rec = _named(held_out(choose_on, per_part["test"]), first)
        rec["scored_on"] = "z 130-159"
        return rec
    cv = cross_validate({p: per_part[p] for p in ("half_a", "half_b")})
    folds = {
        name: {**_named(f, first), "chosen_on": f["chosen_on"]} for name, f in cv["folds"].items()
    }
    return {**cv["mean"], "folds": folds, "scored_on": "each x-half, chosen on the other"}


def model_figures(model: str, predict_meta: dict) -> dict[str, Any]:
    """FLOPs per output voxel (forward, a 64^3 patch) and inference voxels/s of a model."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from models.zoo import load_model, model_path

    net = load_model(model)
    x = torch.zeros((1, 1, 64, 64, 64))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    return {
        "model": model,
        "file": str(model_path(model)),
        "sha256": net.checksum,
        "flops_per_voxel": round(counter.get_total_flops() / 64**3),
        "infer_vps": round(predict_meta["voxels"] / predict_meta["seconds"]),
        "infer_how": "petaseg predict of the whole FIB volume, one thread, uint8, overlap 0",
    }


def plot_curves(curves: dict, results: dict, png: Path) -> Path:
    """VI sum against setting per config: FIB z 0-49 and 50-99 (solid), z 130-159 (dashed),
    the learned model's cross-validated z 0-99 curve (dash-dot); gala halves (solid, dotted).
    Pairs (fragments threshold or mutex bias, threshold): one curve per first value. A dot marks the scored figure at the chosen setting (FIB)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(16, 6))
    for ax, volume in zip(axes, ("fib", "gala"), strict=True):
        colors: dict[str, str] = {}
        for name, per in curves.items():
            for part, curve in per[volume].items():
                style = {"test": "--", "half_b": ":", "train_cv": "-."}.get(part, "-")
                for label, xs, ys in _series(name, part, curve):
                    new = label not in colors
                    color = colors.setdefault(label, plt.get_cmap("tab20")(len(colors) % 20))
                    ax.plot(xs, ys, style, color=color, label=label if new else None, lw=1.2)
            rec = results[name][volume]
            if volume == "fib":
                ax.plot(
                    rec["threshold"],
                    rec["vi_sum"],
                    "o",
                    color=colors[name] if name in colors else "k",
                    ms=5,
                )
        ax.set_title(
            f"{volume}: VI sum against setting (threshold; mutex per bias; multicut beta)",
            fontsize=9,
        )
        ax.set_xlabel("threshold / beta")
        ax.set_ylabel("VI sum (bits)")
        ax.set_ylim(0, 4.5)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def _series(name: str, part: str, curve: dict):
    keys = list(curve)
    if keys and isinstance(keys[0], tuple):
        for bias in sorted({k[0] for k in keys}):
            ks = sorted(k for k in keys if k[0] == bias)
            yield (f"{name} @{bias}", [k[1] for k in ks], [curve[k]["vi_sum"] for k in ks])
    else:
        ks = sorted(keys)
        yield name, ks, [curve[k]["vi_sum"] for k in ks]


def workflow_figures(summary_file: str) -> dict[str, Any]:
    """Every segmentation of a ``petaseg run`` of the FIB example (its summary JSON) scored
    against the ground truth on the whole volume and on z 130-159 (both cropped alike)."""
    from pipeline.evaluate import evaluate_arrays
    from pipeline.evaluate.choice import figures
    from pipeline.io.volume import open_volume

    summary = json.loads(Path(summary_file).read_text())
    outputs = summary["outputs"]
    gt = open_volume(outputs["ground_truth"]).read()
    out = {"summary": summary_file, "segmentations": []}
    for rec in outputs["segmentations"]:
        seg = open_volume(rec["segmentation"]).read()
        whole = figures(evaluate_arrays(seg, gt))
        test = figures(evaluate_arrays(np.ascontiguousarray(seg[FIB_TEST]), gt[FIB_TEST]))
        out["segmentations"].append(
            {
                "threshold": rec["threshold"],
                "corrected": rec["corrected"],
                "z130_159": test,
                "whole": whole,
            }
        )
    return out
