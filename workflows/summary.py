"""A run's summary for people: one line per scored segmentation (the corrected one labelled as
such), the summary file beside a local output and its overlay PNG (a section of the EM with the
segmentations over it, beside the ground truth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def metric_label(metric: dict[str, Any]) -> str:
    """``threshold 0.5``, or ``corrected`` for the segmentation after error correction."""
    return "corrected" if metric.get("corrected") else f"threshold {metric['threshold']:g}"


def metric_lines(metrics: list[dict[str, Any]]) -> list[str]:
    """One line per scored segmentation: VI split/merge/sum and adapted Rand."""
    return [
        f"  {metric_label(m):<14} VI split {m['vi_split']:.3f} merge {m['vi_merge']:.3f} "
        f"sum {m['vi_sum']:.3f}, adapted Rand {m['adapted_rand']:.3f}"
        for m in metrics
    ]


def summary_files(output: str) -> tuple[Path, Path]:
    """``out/run.zarr`` -> ``out/run.summary.json`` and ``out/run.overlay.png``, beside it."""
    folder, stem = Path(output).parent, Path(output.rstrip("/")).stem
    return folder / f"{stem}.summary.json", folder / f"{stem}.overlay.png"


def overlay_labels(outputs: dict[str, Any]) -> dict[str, str]:
    """The labellings a run's overlay shows: the first segmentation, the corrected one, the
    ground truth."""
    segmentations = outputs.get("segmentations") or []
    labels = {}
    if segmentations:
        first = segmentations[0]
        labels[f"segmentation t={first['threshold']:g}"] = first["segmentation"]
    corrected = [s for s in segmentations if s.get("corrected")]
    if corrected:
        labels["corrected"] = corrected[0]["segmentation"]
    if outputs.get("ground_truth"):
        labels["ground truth"] = outputs["ground_truth"]
    return labels


def write_overlay(outputs: dict[str, Any], path: Path) -> Path | None:
    """The run's overlay PNG at ``path`` (over the EM, or the boundary map without EM); None
    when the run made no segmentation."""
    from pipeline.export.overlay import volume_overlay_png

    image = outputs.get("raw") or outputs.get("boundaries")
    labels = overlay_labels(outputs)
    if not image or not labels:
        return None
    return volume_overlay_png(image, labels, path)


def write_summary(summary: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(summary, indent=1, default=str))
    return path
