"""The whole pipeline on the FIB-SEM medulla volume (160x250x250, 10 nm) on this machine:
seconds and voxels/s per stage, total voxels/s, VI and adapted Rand against the neuron ids, and
a PNG bar chart of the stage times.

It runs ``workflows/examples/fib_medulla.yaml`` as shipped (only the output folder and the number
of workers are set here): predict, fragments, graph, agglomerate, segment, correct, relabel,
evaluate, export. ``vi_sum`` / ``adapted_rand`` score the workflow's own result, the corrected
segmentation at the example's fixed ``stages.correct.threshold``; nothing is chosen against the
ground truth. ``all_thresholds`` lists every segmentation the run wrote. Both shipped models were
trained on z 0-129 of this volume, so the figures are partly on training data; the held-out
figures of the models are in their cards and in ``bench correct``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIB = REPO.parent / "shared" / "data" / "fib_medulla_flyem" / "fib_medulla_train.h5"


def bar_chart(stages: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in stages if not stages[n].get("skipped")]
    secs = [stages[n]["seconds"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh(names[::-1], secs[::-1], color="#4c72b0")
    for y, s in enumerate(secs[::-1]):
        ax.text(s, y, f" {s:.1f} s", va="center", fontsize=8)
    ax.set_xlabel("seconds")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(json_out: bool = False, workers: int = 2, keep: str | None = None) -> dict:
    from cluster import open_client
    from workflows.config import load_config
    from workflows.run import run_workflow
    from workflows.schema import Workflow

    if not FIB.exists():
        raise SystemExit(f"needs {FIB} (../shared/data beside the checkout)")
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="petaseg-bench-pipeline-"))
    out = folder / "fib.zarr"
    for p in (out, Path(str(out) + ".done"), Path(str(out) + ".tables")):
        shutil.rmtree(p, ignore_errors=True)
    overrides = [  # the example's input paths are relative to the checkout: made absolute
        f"output={out}",
        f"cluster.workers={workers}",
        f"input.raw={FIB}/volumes/raw",
        f"input.ground_truth={FIB}/volumes/labels/neuron_ids",
    ]
    wf = load_config(Workflow, REPO / "workflows" / "examples" / "fib_medulla.yaml", overrides)
    t0 = time.perf_counter()
    with open_client(wf.cluster.spec()) as client:
        summary = run_workflow(wf, client, progress=not json_out)
    total = time.perf_counter() - t0
    voxels = 160 * 250 * 250
    final = next(m for m in summary["metrics"] if m["corrected"])
    stages = {
        n: {k: v for k, v in t.items() if k != "skipped"} for n, t in summary["stages"].items()
    }
    png = REPO / "benchmarks" / "results" / "pipeline_stages.png"
    png.parent.mkdir(exist_ok=True)
    bar_chart(
        summary["stages"],
        png,
        f"petaseg on FIB medulla 160x250x250, {workers} workers, "
        f"{os.cpu_count()} cores: {voxels / total / 1e6:.2f} Mvox/s",
    )
    result = {
        "volume": "fib_medulla_train 160x250x250 @10nm",
        "workers": workers,
        "workflow": "workflows/examples/fib_medulla.yaml",
        "total_s": round(total, 2),
        "total_vps": round(voxels / total, 1),
        "stages": stages,
        "threshold": final["threshold"],
        "vi_sum": round(final["vi_sum"], 4),
        "vi_split": round(final["vi_split"], 4),
        "vi_merge": round(final["vi_merge"], 4),
        "adapted_rand": round(final["adapted_rand"], 4),
        "correction": {
            k: v for k, v in (summary["correction"] or {}).items() if k in ("applied", "ranked")
        },
        "all_thresholds": [
            {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}
            for m in summary["metrics"]
        ],
        "png": str(png),
    }
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return result


if __name__ == "__main__":
    print(json.dumps(main(True, keep=sys.argv[1] if len(sys.argv) > 1 else None)))
