"""Every bad input a user can give gets one message that names the input and the fix, exit code
2, no traceback, nothing overwritten and nothing marked done (the probes of issue 14)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.io.volume import create_volume
from pipeline.provenance import provenance
from workflows.cli.app import main

SHAPE = (16, 32, 32)


def write(url: str, data: np.ndarray, attrs: dict | None = None) -> str:
    vol = create_volume(url, data.shape, data.dtype, (10, 10, 10), chunks=(8, 16, 16), attrs=attrs)
    vol.write(vol.roi, data)
    return url


def digest(folder: Path) -> str:
    """A hash of every file under ``folder`` (names and bytes): equal means untouched."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def raw(tmp_path) -> str:
    rng = np.random.default_rng(0)
    return write(str(tmp_path / "x.zarr" / "raw"), rng.integers(0, 255, SHAPE, dtype=np.uint8))


def refused(capsys, argv: list[str], *expected: str) -> str:
    """Run ``petaseg argv``: exit 2, one message holding every ``expected`` text, no traceback."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    return err


def test_predict_never_writes_over_its_input(tmp_path, raw, capsys):
    before = digest(tmp_path / "x.zarr")
    predict = ["predict", "--model", "fib-boundary-v1", "--input", raw, "--cluster", "threads:1"]
    for output in (raw, str(tmp_path / "x.zarr"), f"file://{raw}", f"{tmp_path}/./x.zarr/raw/"):
        refused(capsys, [*predict, "--output", output], "would overwrite that input", raw)
    assert digest(tmp_path / "x.zarr") == before
    assert not list(tmp_path.glob("*.done"))  # nothing marked done anywhere


def test_stages_refuse_outputs_that_are_inputs(tmp_path, raw, capsys):
    before = digest(tmp_path / "x.zarr")
    refused(capsys, ["convert", raw, raw, "--cluster", "threads:1"], "would overwrite")
    refused(capsys, ["convert", raw, f"precomputed://file://{raw}"], "would overwrite")
    bnd = write(str(tmp_path / "b.zarr" / "boundary"), np.zeros(SHAPE, np.float32))
    refused(capsys, ["fragments", bnd, bnd, "--cluster", "threads:1"], "would overwrite")
    segment = ["segment", "--boundaries", bnd, "--cluster", "threads:1"]
    refused(capsys, [*segment, "--output", str(tmp_path / "b.zarr")], "holds the input")
    assert digest(tmp_path / "x.zarr") == before


def test_a_volume_another_stage_or_tool_wrote_is_never_resumed(tmp_path, raw, capsys):
    # volumes of the same grid and dtype where the output would go: one petaseg did not write,
    # one another stage wrote; resuming into either would overwrite it
    data = np.ones(SHAPE, np.uint8)
    theirs = write(str(tmp_path / "b.zarr" / "theirs"), data)
    attrs = {"petaseg": provenance("predict", {})}
    other = write(str(tmp_path / "b.zarr" / "predicted"), data, attrs)
    before = digest(tmp_path / "b.zarr")
    convert = ["convert", raw, "--cluster", "threads:1", "--chunks", "8,16,16"]
    refused(capsys, [*convert, theirs], "something other than petaseg", "another URL")
    refused(capsys, [*convert, other], "petaseg's predict stage", "another URL")
    assert digest(tmp_path / "b.zarr") == before


def test_a_workflow_whose_outputs_hold_its_inputs_is_refused_before_any_step(tmp_path, capsys):
    out = tmp_path / "run.zarr"
    gt = write(str(out / "segmentation"), np.ones(SHAPE, np.uint64))
    bnd = write(str(tmp_path / "in.zarr" / "boundary"), np.zeros(SHAPE, np.float32))
    wf = {
        "input": {"boundaries": bnd, "ground_truth": gt},
        "output": str(out),
        "stages": {"correct": {"enabled": False}, "export": {"enabled": False}},
        "cluster": {"kind": "threads", "workers": 1},
    }
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(wf))
    before = digest(out)
    refused(capsys, ["run", str(path)], "is the input", gt)
    assert digest(out) == before and not (tmp_path / "run.zarr.done").exists()


def test_empty_volumes_are_refused(tmp_path, capsys):
    import zarr

    zarr.create_array(str(tmp_path / "e.zarr" / "raw"), shape=(0, 16, 16), dtype="uint8")
    empty = str(tmp_path / "e.zarr" / "raw")
    out = str(tmp_path / "o.zarr" / "raw")
    refused(capsys, ["convert", empty, out], "is empty", "nothing to convert")
    predict = ["predict", "--model", "fib-boundary-v1", "--input", empty, "--output", out]
    refused(capsys, predict, "is empty", "nothing to predict")
    assert not (tmp_path / "o.zarr").exists()


def test_damaged_metadata_and_chunks_are_named(tmp_path, raw, capsys):
    (tmp_path / "x.zarr" / "raw" / "zarr.json").write_text("{not json")
    refused(capsys, ["info", raw], raw, "not valid JSON", "damaged")
    good = write(str(tmp_path / "y.zarr" / "raw"), np.ones(SHAPE, np.uint8))
    chunk = tmp_path / "y.zarr" / "raw" / "s0" / "c" / "1" / "0" / "1"
    chunk.write_bytes(chunk.read_bytes()[:5])  # a truncated chunk
    out = str(tmp_path / "o.zarr" / "raw")
    code = main(["convert", good, out, "--cluster", "threads:1", "--block", "16,32,32"])
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err, err
    assert f"{good}: stored chunk(s) file://{good}/s0/c/1/0/1 cannot be decoded" in err, err
    assert "not marked done" in err
    groups = [p for p in (tmp_path / "o.zarr.done").rglob("groups/*/*") if p.is_file()]
    assert all(not np.unpackbits(np.frombuffer(g.read_bytes(), np.uint8)).any() for g in groups)


def test_an_unwritable_output_is_named(raw, capsys):
    if os.access("/sys", os.W_OK) and not Path("/sys/kernel").exists():
        pytest.fail("expected /sys to refuse new folders on this machine")
    refused(capsys, ["convert", raw, "/sys/petaseg-test.zarr/raw"], "cannot write /sys")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["convert", "a.zarr/r", "b.zarr/r", "--cluster", "local:0"], "positive integer"),
        (["convert", "a.zarr/r", "b.zarr/r", "--cluster", "threads:abc"], "positive integer"),
        (["convert", "a.zarr/r", "b.zarr/r", "--cluster", "slurm-please"], "not understood"),
        (["segment", "--boundaries", "b", "--output", "o", "--threshold", "1.5"], "--threshold"),
        (
            ["run", "workflows/examples/demo.yaml", "--set", "stages.segment.thresholds=[0.4,"],
            "not valid YAML",
        ),
    ],
)
def test_option_values_are_checked(argv, expected, capsys):
    refused(capsys, argv, expected)


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        ({"fragments": {"block": [0, 32, 32]}}, "stages.fragments.block.0"),
        ({"fragments": {"block": [-16, 32, 32]}}, "stages.fragments.block.0"),
        ({"segment": {"thresholds": [1.5, -0.2]}}, "stages.segment.thresholds.0"),
        ({"predict": {"patch": [16, 0, 16]}}, "stages.predict.patch.1"),
    ],
)
def test_workflow_values_are_checked_with_their_key_path(tmp_path, stages, expected, capsys):
    wf = {"input": {"synthetic": {}}, "output": str(tmp_path / "o.zarr"), "stages": stages}
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(wf))
    refused(capsys, ["run", str(path)], expected)
    assert not (tmp_path / "o.zarr").exists()


def test_status_of_an_output_without_a_run(tmp_path, capsys):
    refused(capsys, ["status", str(tmp_path / "none.zarr")], "no run found")


def _petaseg(args: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        **env,
    )
    code = "import sys; from workflows.cli.app import entry; sys.argv[0] = 'petaseg'; entry()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=clean, capture_output=True, text=True, timeout=120
    )


def test_s3_without_credentials_or_endpoint_names_the_fix():
    url = "s3://petaseg-bucket/x.zarr/raw"
    r = _petaseg(["info", url])
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "no S3 credentials" in r.stderr and "AWS_ACCESS_KEY_ID" in r.stderr
    keys = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    r = _petaseg(["info", url], AWS_ENDPOINT_URL="http://127.0.0.1:9", **keys)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "cannot reach the endpoint http://127.0.0.1:9 (AWS_ENDPOINT_URL)" in r.stderr


def test_proofread_ids_outside_uint64(tmp_path, capsys):
    from pipeline.lut import Lut, lut_bytes

    lut = tmp_path / "lut.parquet"
    lut.write_bytes(
        lut_bytes(Lut.from_arrays(np.array([1, 2], np.uint64), np.array([1, 2], np.uint64)))
    )
    log = str(tmp_path / "edits.sqlite")
    assert main(["proofread", "init", log, "--lut", str(lut)]) == 0
    capsys.readouterr()
    refused(capsys, ["proofread", "merge", log, "--", "-5", "2"], "-5 is not a segment id")
    refused(capsys, ["proofread", "merge", log, "1", str(2**64)], f"{2**64} is not a segment id")


def test_training_never_writes_its_checkpoint_over_the_training_data(tmp_path, capsys):
    h5 = tmp_path / "data.h5"
    h5.write_bytes(b"not read: refused before")
    before = h5.read_bytes()
    args = ["train", "boundary", "--raw", f"{h5}/volumes/raw", "--labels", f"{h5}/volumes/labels"]
    refused(capsys, [*args, "--out", str(h5)], "holds the input", "write to another URL")
    assert h5.read_bytes() == before
