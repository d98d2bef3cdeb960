import json

import numpy as np

from pipeline.io.volume import open_volume
from tests.workflows.test_workflow import ALL_STAGES
from workflows.cli import main


def test_demo_runs_the_whole_pipeline_on_a_small_synthetic_volume(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--output", str(out), "--shape", "32,64,64", "--cluster", "threads:2"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "petaseg demo: (32, 64, 64)" in text and "corrected" in text and "petaseg view" in text
    # one summary: the run's, with what the demo adds
    assert sorted(p.name for p in out.glob("*.json")) == ["demo.summary.json"]
    summary = json.loads((out / "demo.summary.json").read_text())
    assert summary["shape"] == [32, 64, 64] and summary["workflow"] == "demo"
    assert summary["files"]["summary"] == str(out / "demo.summary.json")
    assert list(summary["stages"]) == ALL_STAGES
    # scored against the synthetic ground truth, before and after correction
    metrics = summary["metrics"]
    assert [m["corrected"] for m in metrics] == [False, False, True]
    for m in metrics:
        assert 0 <= m["adapted_rand"] <= 1 and m["vi_sum"] == m["vi_split"] + m["vi_merge"]
    # the shipped model finds the synthetic cells: far better than one segment or confetti
    best = min(m["vi_sum"] for m in metrics)
    gt = open_volume(str(out / "demo.zarr/input/labels/neurons")).read()
    seg = open_volume(summary["files"]["segmentation"]).read()
    assert seg.shape == gt.shape and 5 < len(np.unique(seg)) < 20 * len(np.unique(gt))
    assert best < 2.0, metrics
    # the overlay PNG and a Neuroglancer state pointing at the exported layers
    assert summary["files"]["overlay"] == str(out / "demo.overlay.png")
    assert (out / "demo.overlay.png").stat().st_size > 20_000
    state = json.loads((out / "demo.neuroglancer/viewer_state.json").read_text())
    names = {layer["name"] for layer in state["state"]["layers"]}
    assert {"image", "segmentation"} <= names
    assert (out / "demo.neuroglancer/segmentation/info").exists()
    assert summary["files"]["view it"] == f"petaseg view {out}/demo.neuroglancer"
