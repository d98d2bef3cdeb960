"""The README runs as written.

* Its "Python API" section: the python blocks, in order, as one program in an empty folder (like
  a notebook: no script file), print exactly its text blocks.
* Its bash blocks: every command, the way a newcomer runs them: in a copy of the repository (a
  "clone") that has ``../shared/data`` beside it, in README order, each checked for exit code 0.
  Commands that install (virtualenv creation, ``activate``, ``pip install``) or run the whole test
  suite (``pytest``) are recognised and not executed: this suite is that run, in an installed
  environment. A block is left out only with the visible marker comment ``NOT_RUN_MARKER`` as its
  first line, and the test asserts how many commands ran.
* What the README says about the demo is what the demo workflow does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, SHARED_DATA

FENCED = re.compile(r"^```(\w+)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
NOT_RUN_MARKER = "# readme-test: not run"
# commands recognised as installing or running the whole suite: shown, never executed here
NOT_EXECUTED = {
    "creates a virtualenv": re.compile(r"^python3(\.\d+)? -m venv\b"),
    "activates the virtualenv": re.compile(r"^(\.|source) \S*bin/activate$"),
    "installs packages": re.compile(r"^(python -m )?pip install\b"),
    "runs the whole test suite": re.compile(r"^(python -m )?pytest\b"),
}
# how many README commands must run (a block dropped by mistake fails the test)
MIN_SETUP_COMMANDS = 1
MIN_DATA_COMMANDS = 14


def readme_section(title: str) -> str:
    """The text of the README section ``## title``, up to the next ``## `` heading."""
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def fenced_blocks(text: str, language: str) -> list[str]:
    return [code for lang, code in FENCED.findall(text) if lang == language]


def test_the_python_api_examples_print_what_the_readme_shows(tmp_path):
    section = readme_section("Python API")
    program = "\n".join(fenced_blocks(section, "python"))
    shown = "".join(fenced_blocks(section, "text"))
    assert "run_workflow(" in program and ".to_dask()" in program and "print(raw)" in program
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown


def test_the_readme_names_the_models_the_demo_uses():
    demo = yaml.safe_load((REPO / "workflows" / "examples" / "demo.yaml").read_text())
    text = " ".join(readme_section("Set up and run (two commands)").split())
    boundary = re.search(r"boundary prediction with the shipped `([^`]+)`", text)
    correction = re.search(r"correction with the shipped `([^`]+)`", text)
    assert boundary and boundary.group(1) == demo["model"]
    assert correction and correction.group(1) == demo["stages"]["correct"]["model"]


def commands_of(block: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, comment lines dropped, ``a && b``
    split into its commands."""
    joined = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            commands += [part.strip() for part in line.split(" && ")]
    return commands


def not_executed(command: str) -> str | None:
    """Why ``command`` is not run here (it installs or runs the suite), or None."""
    return next((why for why, rx in NOT_EXECUTED.items() if rx.search(command)), None)


def readme_commands() -> list[list[str]]:
    """The README's bash blocks as lists of commands, in order; a marked block is left out."""
    blocks = fenced_blocks((REPO / "README.md").read_text(), "bash")
    return [commands_of(b) for b in blocks if not b.lstrip().startswith(NOT_RUN_MARKER)]


def test_readme_blocks_are_recognised():
    """Every bash block is run or visibly marked; the install and suite commands are known."""
    blocks = fenced_blocks((REPO / "README.md").read_text(), "bash")
    marked = [b for b in blocks if b.lstrip().startswith(NOT_RUN_MARKER)]
    assert len(marked) <= 1, "only the 2D training block may be left out"
    skipped = [c for cmds in readme_commands() for c in cmds if not_executed(c)]
    assert {not_executed(c) for c in skipped} == set(NOT_EXECUTED), skipped


@pytest.fixture
def clone(tmp_path) -> Path:
    """A copy of the repository with ``../shared/data`` beside it, as a newcomer's checkout."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the README's examples read ../shared/data, absent here ({SHARED_DATA})")
    ignore = shutil.ignore_patterns(
        ".git",
        ".venv",
        "venv",
        "__pycache__",
        "*.egg-info",
        ".*cache",
        "petaseg-demo",
        "out",
        "out.zarr",  # and no virtualenv: .ci/run's .ci/venv is 7 GB
    )
    repo = Path(shutil.copytree(REPO, tmp_path / "petaseg", ignore=ignore))
    (tmp_path / "shared").symlink_to(SHARED_DATA.parent, target_is_directory=True)
    return repo


def run_commands(commands: list[str], folder: Path) -> int:
    """Run each command with bash in ``folder`` (the ``petaseg`` of this environment on the
    PATH, the copied code first on PYTHONPATH); returns how many ran. Fails on the first one
    that exits non-zero, with its output."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(folder),
    }
    ran = 0
    for command in commands:
        if not_executed(command):
            print(f"not executed ({not_executed(command)}): {command}")
            continue
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, f"$ {command}\n{done.stdout}\n{done.stderr}"
        ran += 1
    return ran


@pytest.mark.slow
def test_the_readme_setup_command_runs_the_demo(clone):
    setup = readme_commands()[0]
    assert setup[-1] == "petaseg demo"
    assert run_commands(setup, clone) >= MIN_SETUP_COMMANDS
    assert (clone / "petaseg-demo" / "demo.summary.json").is_file()
    assert (clone / "petaseg-demo" / "demo.overlay.png").is_file()


@pytest.mark.slow
def test_the_readme_commands_on_real_data_run_in_a_fresh_clone(clone):
    """Every bash block after the set-up one, in order, in one clone (the proofreading block
    works on what the workflow block wrote)."""
    commands = [c for block in readme_commands()[1:] for c in block]
    assert run_commands(commands, clone) >= MIN_DATA_COMMANDS
    # what the README says these commands write, they wrote, inside the clone
    for path in ("out.zarr/raw", "fib_raw/info", "out/fib_small.summary.json"):
        assert (clone / path).exists(), path
    assert (clone / "out" / "fib_small.overlay.png").stat().st_size > 20_000
    assert (clone / "out" / "fib_view" / "viewer_state.json").is_file()
