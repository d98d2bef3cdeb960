"""The README's "Python API" section runs as written: its python blocks, in order, as one program
in an empty folder (like a notebook: no script file), print exactly its text blocks."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO

FENCED = re.compile(r"^```(\w+)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


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
