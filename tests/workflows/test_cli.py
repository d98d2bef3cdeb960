"""The ``petaseg`` command line itself: --version, usage errors (exit 2, the usage line, no
traceback), user errors (exit 2, one line), failed blocks (3), Ctrl-C (130), internal errors
(exit 1, one line naming a log file with the traceback; --debug prints it), the same mapping for
scripts, commands as module-level functions composed in the pipeline's order, and commands that
share one function (the invoked name picks what it does; each shows its own help)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer

from models.errors import ModelError
from pipeline.errors import BlockFailures, InputError
from pipeline.io.volume import create_volume
from pipeline.provenance import package_version
from tests.conftest import REPO
from workflows.cli import app, main
from workflows.cli.app import COMMANDS
from workflows.cli.commands import segment, volumes
from workflows.cli.exits import exit_on_failure

PIPELINE_ORDER = [
    "info", "convert", "predict", "segment", "fragments", "graph", "agglomerate", "relabel",
    "evaluate", "correct", "correct-train", "proofread", "export", "view", "run", "submit",
    "status", "demo", "train", "train2d", "predict2d", "bench",
]  # fmt: skip

# (argv, the usage line's command, the error message): each kind of usage error, for a
# top-level command and for a proofread sub-command
USAGE_ERRORS = [
    (["info", "x.zarr/raw", "--bogus"], "petaseg info", "No such option: --bogus"),
    (["proofread", "undo", "l.sqlite", "--bogus"], "petaseg proofread undo", "No such option"),
    (["segmnt"], "petaseg", "No such command 'segmnt'"),
    (["proofread", "mrge"], "petaseg proofread", "No such command 'mrge'"),
    (["info"], "petaseg info", "Missing argument 'url'"),
    (["proofread", "merge", "l.sqlite", "1"], "petaseg proofread merge", "Missing argument 'b'"),
    (["evaluate", "s", "g", "--block"], "petaseg evaluate", "Option '--block' requires an argument"),
    (
        ["segment", "--boundaries", "b", "--output", "o", "--bins", "abc"],
        "petaseg segment",
        "Invalid value for '--bins'",
    ),
    (["proofread", "merge", "l.sqlite", "1", "x"], "petaseg proofread merge", "Invalid value for 'b'"),
]  # fmt: skip


@pytest.fixture()
def volume_url(tmp_path) -> str:
    url = str(tmp_path / "v.zarr" / "raw")
    create_volume(url, (4, 8, 8), "uint8", (10, 10, 10), chunks=(4, 8, 8))
    return url


@pytest.fixture()
def state_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


def _raise_in_info(monkeypatch, error: BaseException) -> None:
    """``petaseg info`` raises ``error`` where it opens the volume."""

    def boom(*args, **kwargs):
        raise error

    monkeypatch.setattr("pipeline.io.volume.open_volume", boom)


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"petaseg {package_version()}\n"


@pytest.mark.parametrize(("argv", "command", "message"), USAGE_ERRORS)
def test_usage_errors_print_the_usage_line_and_exit_2(argv, command, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert lines[0].startswith(f"Usage: {command} [OPTIONS]"), captured.err
    assert lines[-1].startswith(f"Error: {message}"), captured.err
    assert len(lines) == 3 and "Traceback" not in captured.err and captured.out == ""


def test_the_installed_entry_point_exits_with_the_codes(tmp_path):
    def run(*argv: str) -> subprocess.CompletedProcess:
        code = "from workflows.cli import entry; entry()"
        return subprocess.run(
            [sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True, text=True
        )

    version = run("--version")
    assert version.returncode == 0 and version.stdout == f"petaseg {package_version()}\n"
    usage = run("info", "--bogus")
    assert usage.returncode == 2 and "Error: No such option: --bogus" in usage.stderr
    assert "Traceback" not in usage.stderr


def test_a_user_error_is_one_line_and_exits_2(tmp_path, capsys):
    assert main(["info", str(tmp_path / "none.zarr" / "raw")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("petaseg: error: ") and "no Zarr volume at" in err
    assert err.count("\n") == 1


def test_model_errors_block_failures_and_ctrl_c(monkeypatch, capsys):
    model_error = ModelError
    _raise_in_info(monkeypatch, model_error("checkpoint x.pt is corrupt"))
    assert main(["info", "x"]) == 2
    assert capsys.readouterr().err == "petaseg: error: checkpoint x.pt is corrupt\n"
    _raise_in_info(monkeypatch, BlockFailures("convert", [7], 1, {7: "disk full"}))
    assert main(["info", "x"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("petaseg: stage 'convert': 1 block(s) failed") and "disk full" in err
    _raise_in_info(monkeypatch, KeyboardInterrupt())
    assert main(["info", "x"]) == 130


def test_an_internal_error_is_one_line_naming_the_log_with_its_traceback(
    monkeypatch, capsys, state_home
):
    _raise_in_info(monkeypatch, ZeroDivisionError("kaboom\nsecond line"))
    assert main(["info", "x.zarr/raw"]) == 1
    err = capsys.readouterr().err
    match = re.fullmatch(
        r"petaseg: internal error: ZeroDivisionError: kaboom \.\.\.; the traceback is in (.+)\n",
        err,
    )
    assert match, err
    log = Path(match[1])
    assert log.parent == state_home / "petaseg"
    assert re.fullmatch(r"petaseg-\d{8}-\d{6}-\d+\.log", log.name)
    text = log.read_text()
    assert "command: petaseg info x.zarr/raw" in text
    assert "Traceback (most recent call last)" in text and "in boom" in text
    assert "ZeroDivisionError: kaboom\nsecond line" in text


def test_debug_prints_the_traceback_instead(monkeypatch, capsys, state_home):
    _raise_in_info(monkeypatch, ZeroDivisionError("kaboom"))
    assert main(["--debug", "info", "x.zarr/raw"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last)") and "in boom" in err
    assert err.rstrip().endswith("ZeroDivisionError: kaboom")
    assert not (state_home / "petaseg").exists()


def test_scripts_share_the_mapping():
    for error, code in [
        (InputError("bad"), 2),
        (ModelError("bad"), 2),
        (BlockFailures("s", [1], 1, {}), 3),
        (KeyboardInterrupt(), 130),
    ]:
        with pytest.raises(SystemExit) as e, exit_on_failure():
            raise error
        assert e.value.code == code
    with pytest.raises(ZeroDivisionError), exit_on_failure():
        raise ZeroDivisionError("not a user error")


def test_commands_are_module_level_functions_listed_in_pipeline_order():
    group = typer.main.get_command(app)
    assert group.list_commands(typer.Context(group)) == PIPELINE_ORDER
    assert list(COMMANDS) == PIPELINE_ORDER
    for name, target in COMMANDS.items():
        typers = [target] if isinstance(target, typer.Typer) else []
        functions = [c.callback for t in typers for c in t.registered_commands] or [target]
        for f in functions:
            module = sys.modules[f.__module__]
            assert getattr(module, f.__name__) is f, (name, f)


def test_commands_are_callable_from_python(volume_url, capsys):
    volumes.info(volume_url, as_json=True)
    described = json.loads(capsys.readouterr().out)
    assert described["shape"] == [4, 8, 8] and described["dtype"] == "uint8"
    with pytest.raises(InputError, match="--mode '4d': use 2d or 3d"):
        segment.fragments("b.zarr/x", "f.zarr/x", mode="4d")
    params = segment.fragment_params(0.4, 2.0, 1.0, 0.9, 50, "2d")
    assert (params.threshold, params.mode) == (0.4, "2d")
    assert segment.parse_thresholds(["0.5,0.7", "0.5"], 0.7) == [0.5, 0.7]
    assert np.array_equal(segment.parse_context("4"), (4, 4, 4))


def test_predict_plans_once(tmp_path, monkeypatch, capsys):
    import torch

    from models.checkpoint import save_checkpoint
    from pipeline.inference.network import ModelSource
    from tests.support.predict import tiny_net, write_input

    raw = np.random.default_rng(0).integers(0, 255, (16, 32, 32), dtype=np.uint8)
    raw_url = write_input(str(tmp_path / "in.zarr" / "raw"), raw)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "net.pt", tiny_net())
    resolved = []
    resolve = ModelSource.resolve.__func__

    def counted(cls, *args, **kwargs):
        resolved.append(args)
        return resolve(cls, *args, **kwargs)

    monkeypatch.setattr(ModelSource, "resolve", classmethod(counted))
    args = ["predict", "--model", str(tmp_path / "net.pt"), "--input", raw_url]
    args += ["--output", str(tmp_path / "o.zarr" / "p"), "--patch", "16,16,16"]
    args += ["--dtype", "float32", "--cluster", "threads:1", "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["blocks_run"] == 1
    assert len(resolved) == 1  # the checkpoint is read and hashed once on the client


# commands registered from one function: (group, command, the start of its own description)
SHARED_FUNCTION_COMMANDS = [
    ("train", "boundary", "Train a 3D boundary U-Net"),
    ("train", "affinity", "Train a 3D affinity U-Net"),
    ("train2d", "detect", "Object boxes: two-stage (Faster R-CNN)"),
    ("train2d", "instance", "Mask R-CNN on our encoder + FPN"),
    ("proofread", "undo", "Revert the latest edit in effect"),
    ("proofread", "redo", "Re-apply the latest undone edit"),
]


@pytest.mark.parametrize(("group", "command", "description"), SHARED_FUNCTION_COMMANDS)
def test_commands_sharing_a_function_describe_themselves(group, command, description, capsys):
    assert main([group, command, "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert f"Usage: petaseg {group} {command}" in shown and description in shown
    for other_group, other, text in SHARED_FUNCTION_COMMANDS:
        if other_group == group and other != command:
            assert text not in shown, other


def test_the_invoked_name_picks_the_target_and_the_model(tmp_path, monkeypatch, capsys):
    started = []
    monkeypatch.setattr(
        "workflows.training.train3d.run_training", lambda run: started.append(run.target) or {}
    )
    monkeypatch.setattr(
        "workflows.training.train2d.run_detect",
        lambda run, kind, tile: started.append((kind, run.batch, tile)) or {},
    )
    volumes = ["--raw", "r.zarr/raw", "--labels", "l.zarr/labels", "--out", str(tmp_path / "n.pt")]
    assert main(["train", "affinity", *volumes]) == 0
    assert main(["train", "boundary", *volumes]) == 0
    out = ["--out", str(tmp_path / "m.pt")]
    assert main(["train2d", "detect", *out]) == 0
    assert main(["train2d", "instance", *out, "--batch", "3"]) == 0
    assert main(["train2d", "detect", *out, "--model", "grid", "--tile", "128"]) == 0
    assert started == [
        "affinity",
        "boundary",
        ("two_stage", 2, 256),
        ("instance", 3, 256),
        ("grid", 2, 128),
    ]
    capsys.readouterr()
    assert main(["train2d", "instance", *out, "--model", "two_stage"]) == 2
    assert "--model 'two_stage' is unknown; use one of ['mask_rcnn']" in capsys.readouterr().err
    assert len(started) == 5
