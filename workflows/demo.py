"""``petaseg demo``: the whole path on an embedded LocalCluster, from nothing to a summary.

A synthetic EM-like volume with ground truth (or any volume given by URL) is written to local Zarr
and processed blockwise; the summary lists each stage's time and throughput and where the outputs
are, and a PNG shows the data.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.synthetic import make_volume, preview_png
from pipeline.volume import open_volume


@dataclass
class DemoSummary:
    output: str
    shape: tuple[int, int, int]
    voxel_size: tuple[int, int, int]
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "shape": list(self.shape),
            "voxel_size": list(self.voxel_size),
            "stages": self.stages,
            "metrics": self.metrics,
            "files": self.files,
        }

    def text(self) -> str:
        lines = [f"petaseg demo: {self.shape} voxels at {self.voxel_size} nm -> {self.output}"]
        for name, s in self.stages.items():
            lines.append(
                f"  {name:<12} {s['seconds']:7.2f} s  {s.get('voxels_per_s', 0) / 1e6:8.2f} Mvox/s"
                f"  blocks {s.get('blocks', '-')}"
            )
        for k, v in self.metrics.items():
            lines.append(f"  {k:<12} {v:.4f}")
        for k, v in self.files.items():
            lines.append(f"  {k:<12} {v}")
        return "\n".join(lines)


def prepare_input(
    out: Path, shape: tuple[int, int, int], seed: int, input_url: str | None
) -> dict[str, str]:
    """Write the synthetic volume (raw, labels, ideal boundaries) or point at the given input."""
    if input_url:
        return {"raw": input_url}
    vol = make_volume(shape, seed=seed)
    urls = vol.write_zarr(str(out / "demo.zarr"), exist_ok=True)
    preview_png(vol.raw, vol.labels, out / "input.png")
    return urls


def timed(summary: DemoSummary, name: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    secs = time.perf_counter() - t0
    entry: dict[str, Any] = {"seconds": round(secs, 3)}
    if hasattr(result, "blocks_total"):
        entry["blocks"] = result.blocks_total
        entry["blocks_run"] = result.blocks_run
        entry["voxels_per_s"] = round(result.voxels_per_s, 1)
    summary.stages[name] = entry
    return result


def run_demo(
    output: str = "petaseg-demo",
    shape: tuple[int, int, int] = (64, 128, 128),
    seed: int = 0,
    input_url: str | None = None,
    client=None,
    progress: bool = True,
) -> DemoSummary:
    from pipeline.stages.convert import convert

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    urls = prepare_input(out, shape, seed, input_url)
    raw = open_volume(urls["raw"])
    summary = DemoSummary(str(out), raw.shape, raw.voxel_size)
    summary.stages["input"] = {"seconds": round(time.perf_counter() - t0, 3)}
    viewer_raw = f"precomputed://file://{out.resolve()}/precomputed/raw"
    timed(
        summary,
        "export-raw",
        convert,
        urls["raw"],
        viewer_raw,
        chunks=(32, 64, 64),
        client=client,
        progress=progress,
    )
    summary.files = {"raw": urls["raw"], "precomputed_raw": viewer_raw}
    if (out / "input.png").exists():
        summary.files["png"] = str(out / "input.png")
    (out / "summary.json").write_text(json.dumps(summary.as_dict(), indent=1))
    return summary
