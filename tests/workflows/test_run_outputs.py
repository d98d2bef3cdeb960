"""What `petaseg run`, `status` and `convert` say and write is true: a missing input named by its
key before anything runs; the corrected scores labelled as such; an overlay PNG beside the
summary; the dashboard link once per run and each progress line once; stages listed in pipeline
order; recorded paths absolute; `convert --help` naming every cluster kind and the ROI units."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import yaml

from pipeline.io.volume import open_volume
from pipeline.runner.progress import BlockProgress, announce_dashboard
from pipeline.synthetic import make_volume
from tests.workflows.test_workflow import ALL_STAGES, small
from workflows.cli import main


def write_workflow(folder: Path, **changes) -> Path:
    """The small synthetic workflow with a RELATIVE output (``out/run.zarr``), as a YAML file."""
    data = small(Path("out"))
    data["stages"]["correct"] = {"model": "synthetic-correct-v1"}
    data.update(changes)
    path = folder / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_missing_input_is_named_by_its_key_before_any_step_or_cluster(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    wf = write_workflow(tmp_path, input={"raw": "nowhere.zarr/raw", "ground_truth": "gt.h5/ids"})
    assert main(["run", str(wf)]) == 2
    captured = capsys.readouterr()
    assert "input.raw:" in captured.err and "nowhere.zarr/raw" in captured.err
    assert "Traceback" not in captured.err
    assert "[1/" not in captured.err and "Dask dashboard" not in captured.err  # nothing started
    assert not (tmp_path / "out").exists()


def test_one_block_stage_prints_its_progress_line_once(capsys):
    bar = BlockProgress("export-objects", 1, interval=0.0)
    bar.update(1, 4096)  # past the interval: the line is printed now ...
    bar.close()  # ... and not again when the stage closes
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("export-objects: 1/1 blocks (100%)")


def test_the_dashboard_link_is_announced_once_per_link(capsys):
    class FakeClient:
        dashboard_link = "http://127.0.0.1:1/status-test-once"

    for _ in range(11):  # e.g. every sub-stage of a run
        announce_dashboard(FakeClient())
    assert capsys.readouterr().err.count("Dask dashboard:") == 1


def test_run_summary_overlay_status_and_recorded_paths(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["run", str(write_workflow(work))]) == 0
    captured = capsys.readouterr()
    # the dashboard once per run; each progress line once
    assert captured.err.count("Dask dashboard:") == 1, captured.err
    progress = [line for line in captured.err.splitlines() if " blocks (" in line]
    assert all(a != b for a, b in zip(progress, progress[1:], strict=False)), progress
    assert sum(line.startswith("predict: 1/1 blocks") for line in progress) == 1
    # scores: one line per threshold, and the corrected segmentation labelled as such
    scores = [line.strip() for line in captured.out.splitlines() if "VI split" in line]
    labels = [line.split("VI split")[0].strip() for line in scores]
    assert labels == ["threshold 0.5", "threshold 0.7", "corrected"], captured.out
    # the summary and its overlay PNG beside the output
    summary_file = work / "out" / "run.summary.json"
    summary = json.loads(summary_file.read_text())
    assert summary["overlay"] == str(work / "out" / "run.overlay.png")
    assert Path(summary["overlay"]).stat().st_size > 20_000
    assert f"overlay      {summary['overlay']}" in captured.out
    # recorded paths are absolute: the summary's and every stage record's
    assert summary["output"] == str(work / "out" / "run.zarr")
    records = sorted((work / "out" / "run.zarr.done" / "workflow").glob("*.json"))
    recorded = [summary_file.read_text()] + [r.read_text() for r in records]
    for text in recorded:
        for path in _strings_naming(json.loads(text), "run.zarr"):
            assert os.path.isabs(path), path
    # ... so they stay true read from elsewhere
    monkeypatch.chdir(tmp_path)
    final = open_volume(summary["outputs"]["final_segmentation"])
    assert final.shape == (32, 64, 64)
    # status lists the stages in the order the run ran them
    assert main(["status", str(work / "out" / "run.zarr")]) == 0
    lines = capsys.readouterr().out.splitlines()
    stages = [line.split()[1] for line in lines if line.strip().startswith("stage ")]
    assert stages == ALL_STAGES


def _strings_naming(obj, needle: str) -> list[str]:
    """Every string in a JSON value that contains ``needle``."""
    if isinstance(obj, str):
        return [obj] if needle in obj else []
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, list):
        return [s for v in obj for s in _strings_naming(v, needle)]
    return []


def test_convert_help_names_every_cluster_kind_and_the_roi_units(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["convert", "--help"]) == 0
    text = capsys.readouterr().out
    for kind in ("local:N", "threads (", "threads:N", "tcp://", "tls://"):
        assert kind in text, kind
    assert "--roi-nm" in text and "in VOXELS" in text and "in NM" in text


def test_convert_roi_in_voxels_equals_roi_in_nm(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    src = make_volume((16, 48, 48), seed=3).write_zarr("in.zarr")["raw"]
    common = ["--cluster", "threads:1", "--chunks", "8,16,16"]
    assert main(["convert", src, "vox.zarr/raw", "--roi", "4:12,8:40,:", *common]) == 0
    # voxel size 10 nm: the same box in nm (x ':' is the whole axis in both)
    assert main(["convert", src, "nm.zarr/raw", "--roi-nm", "40:120,80:400,:", *common]) == 0
    a, b = open_volume("vox.zarr/raw"), open_volume("nm.zarr/raw")
    assert a.shape == b.shape == (8, 32, 48) and tuple(a.offset) == tuple(b.offset) == (40, 80, 0)
    assert np.array_equal(a.read(), b.read())
    assert np.array_equal(a.read(), open_volume(src).read()[4:12, 8:40, :])
    source = open_volume("vox.zarr/raw").attrs["petaseg"]["params"]["source"]
    assert source == str(tmp_path / "in.zarr" / "raw")  # recorded absolute
    capsys.readouterr()
    # off the voxel grid, or both units at once: refused, naming the option
    assert main(["convert", src, "x.zarr/raw", "--roi-nm", "45:120,0:100,:", *common]) == 2
    assert "--roi-nm" in capsys.readouterr().err and not (tmp_path / "x.zarr").exists()
    assert main(["convert", src, "y.zarr/raw", "--roi", "0:2,:,:", "--roi-nm", ":,:,:"]) == 2
    assert "not both" in capsys.readouterr().err
