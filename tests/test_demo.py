import json

import numpy as np

from pipeline.volume import open_volume
from workflows.cli import main


def test_demo_runs_on_a_small_synthetic_volume(tmp_path, capsys):
    out = tmp_path / "demo"
    assert (
        main(["demo", "--output", str(out), "--shape", "32,64,64", "--cluster", "threads:2"]) == 0
    )
    text = capsys.readouterr().out
    assert "petaseg demo: (32, 64, 64)" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["shape"] == [32, 64, 64]
    assert summary["stages"]["export-raw"]["blocks"] >= 1
    raw = open_volume(summary["files"]["raw"])
    exported = open_volume(summary["files"]["precomputed_raw"])
    np.testing.assert_array_equal(exported.read(), raw.read())
    assert (out / "input.png").stat().st_size > 10_000
