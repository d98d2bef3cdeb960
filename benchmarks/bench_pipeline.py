"""The whole pipeline on the FIB-SEM medulla volume (160x250x250, 10 nm) on this machine:
seconds and voxels/s per stage, total voxels/s, VI and adapted Rand against the neuron ids, and
a PNG bar chart of the stage times."""

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
    from workflows.cluster_spec import client_for_spec
    from workflows.config import load_config
    from workflows.run import run_workflow
    from workflows.schema import Workflow

    if not FIB.exists():
        raise SystemExit(f"needs {FIB} (../shared/data beside the checkout)")
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="petaseg-bench-pipeline-"))
    out = folder / "fib.zarr"
    for p in (out, Path(str(out) + ".done"), Path(str(out) + ".tables")):
        shutil.rmtree(p, ignore_errors=True)
    data = {
        "name": "bench-fib",
        "input": {"raw": f"{FIB}/volumes/raw", "ground_truth": f"{FIB}/volumes/labels/neuron_ids"},
        "output": str(out),
        "stages": {
            "predict": {"block": [64, 128, 128], "overlap": 0.25},
            "fragments": {"block": [64, 128, 128]},
            "segment": {"thresholds": [0.3, 0.4, 0.5, 0.6]},
        },
        "cluster": {"kind": "local", "workers": workers},
    }
    wf = load_config(Workflow, None, data=data)
    client = client_for_spec(wf.cluster)
    t0 = time.perf_counter()
    try:
        summary = run_workflow(wf, client, progress=not json_out)
    finally:
        client.close()
        client.cluster.close()
    total = time.perf_counter() - t0
    voxels = 160 * 250 * 250
    best = min(summary["metrics"], key=lambda m: m["vi_sum"])
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
        "total_s": round(total, 2),
        "total_vps": round(voxels / total, 1),
        "stages": stages,
        "best_threshold": best["threshold"],
        "vi_sum": round(best["vi_sum"], 4),
        "vi_split": round(best["vi_split"], 4),
        "vi_merge": round(best["vi_merge"], 4),
        "adapted_rand": round(best["adapted_rand"], 4),
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
