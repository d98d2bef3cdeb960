"""``petaseg demo``: the whole pipeline on an embedded LocalCluster, from nothing to a
proofreadable result.

A synthetic EM-like volume with ground truth (or any volume given by URL) goes through the demo
workflow (``workflows/examples/demo.yaml``): the shipped boundary model, fragments, region graph,
agglomeration, segmentation, error correction with the shipped correction model, relabel,
evaluation and the Neuroglancer export. The summary lists each stage's time and throughput, VI and
adapted Rand where there is ground truth, a PNG of the segmentation over the EM and the viewer
state to open; ``demo.summary.json`` and ``demo.overlay.png`` beside ``demo.zarr`` hold them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workflows.config import load_config
from workflows.schema import Workflow
from workflows.summary import metric_lines, write_summary

DEMO_YAML = Path(__file__).resolve().parent / "examples" / "demo.yaml"


@dataclass
class DemoSummary:
    output: str
    shape: tuple[int, int, int]
    voxel_size: tuple[int, int, int]
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    correction: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "shape": list(self.shape),
            "voxel_size": list(self.voxel_size),
            "stages": self.stages,
            "metrics": self.metrics,
            "correction": self.correction,
            "files": self.files,
        }

    def text(self) -> str:
        lines = [f"petaseg demo: {self.shape} voxels at {self.voxel_size} nm -> {self.output}"]
        for name, s in self.stages.items():
            vps = s.get("voxels_per_s")
            rate = f"{vps / 1e6:8.2f} Mvox/s" if vps else " " * 15
            lines.append(f"  {name:<12} {s['seconds']:8.2f} s {rate}")
        lines += metric_lines(self.metrics)
        if self.correction:
            a = self.correction.get("applied", {})
            lines.append(
                f"  correction   {a.get('merges', 0)} merge(s), {a.get('splits', 0)} split(s) "
                f"applied; {self.correction.get('ranked', 0)} candidates left for proofreading"
            )
        for k, v in self.files.items():
            lines.append(f"  {k:<12} {v}")
        return "\n".join(lines)


def demo_workflow(
    output: str | Path,
    shape: tuple[int, int, int] = (64, 128, 128),
    seed: int = 0,
    input_url: str | None = None,
    overrides: list[str] | None = None,
) -> Workflow:
    """The shipped demo workflow, pointed at ``output`` and at synthetic data or ``input_url``."""
    data = yaml.safe_load(DEMO_YAML.read_text())
    data["output"] = str(Path(output) / "demo.zarr")
    if input_url:
        data["input"] = {"raw": input_url}
    else:
        data["input"] = {
            "synthetic": {**data["input"]["synthetic"], "shape": list(shape), "seed": seed}
        }
    return load_config(Workflow, None, overrides, data=data)


def run_demo(
    output: str = "petaseg-demo",
    shape: tuple[int, int, int] = (64, 128, 128),
    seed: int = 0,
    input_url: str | None = None,
    client=None,
    progress: bool = True,
    overrides: list[str] | None = None,
) -> DemoSummary:
    from pipeline.io.volume import open_volume
    from workflows.run import run_workflow

    out = Path(output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    wf = demo_workflow(out, shape, seed, input_url, overrides)
    result = run_workflow(wf, client, progress=progress)
    urls = result["outputs"]
    raw = open_volume(urls["raw"])
    summary = DemoSummary(str(out), raw.shape, raw.voxel_size, stages=result["stages"])
    summary.metrics = result["metrics"]
    summary.correction = result.get("correction") or {}
    summary.files = {
        "raw": urls["raw"],
        "segmentation": urls["final_segmentation"],
        "overlay": result.get("overlay", ""),
        "summary": result["summary_file"],
    }
    if urls.get("neuroglancer"):
        summary.files["neuroglancer"] = urls["viewer_state"]
        summary.files["view it"] = f"petaseg view {urls['neuroglancer']}"
    if urls.get("edit_log"):
        summary.files["edit log"] = urls["edit_log"]
    # one summary: the run's, with what the demo adds (the volume's shape, the files to open)
    write_summary(
        {**result, **summary.as_dict(), "output": result["output"]}, Path(result["summary_file"])
    )
    return summary
