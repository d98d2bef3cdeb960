"""The layer table as code: import-linter contracts (pyproject.toml) hold on the tree, and they
fail on a wrong-way import; functions stay short; every package names its public API."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("pipeline", "models", "workflows", "cluster")
MAX_FUNCTION_LINES = 80


def lint_imports(root: Path, config: Path) -> subprocess.CompletedProcess:
    """Run import-linter on the packages under ``root`` with the contracts in ``config``."""
    code = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", code, "--config", str(config), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_layer_contracts_hold():
    result = lint_imports(REPO, REPO / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr


WRONG_WAY = {  # module -> source; one wrong-way import per contract
    "models/__init__.py": "import pipeline\n",
    "pipeline/__init__.py": "",
    "pipeline/io/__init__.py": "import pipeline.runner\n",
    "pipeline/runner/__init__.py": "import pipeline.io\nimport workflows\n",
    "pipeline/seg/__init__.py": "import pipeline.io\n",
    "pipeline/stages/__init__.py": "import torch\n",
    "pipeline/inference/__init__.py": "import torch\n",
    "workflows/__init__.py": "import pipeline\n",
    "cluster/__init__.py": "import pipeline\n",
}


def test_the_contracts_fail_on_a_wrong_way_import(tmp_path):
    for name, source in WRONG_WAY.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    config = tmp_path / "pyproject.toml"
    config.write_text((REPO / "pyproject.toml").read_text())
    result = lint_imports(tmp_path, config)
    assert result.returncode != 0
    contracts = tomllib.loads(config.read_text())["tool"]["importlinter"]["contracts"]
    for contract in contracts:
        assert f"{contract['name']} BROKEN" in result.stdout, result.stdout
    assert "pipeline.stages -> torch" in result.stdout  # torch outside inference
    assert "pipeline.inference -> torch" not in result.stdout  # ... but allowed there


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            decorators = " ".join(ast.unparse(d) for d in node.decorator_list)
            if "jit" not in decorators:  # numba kernels are exempt
                yield node.name, node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("package", [*PACKAGES, "benchmarks"])
def test_no_function_over_80_lines(package):
    long = [
        f"{path.relative_to(REPO)}:{name} ({lines} lines)"
        for path in sorted((REPO / package).rglob("*.py"))
        for name, lines in _functions(path)
        if lines > MAX_FUNCTION_LINES
    ]
    assert not long, "split these into named steps: " + ", ".join(long)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_names_its_public_api(package):
    missing = []
    for init in sorted((REPO / package).rglob("__init__.py")):
        tree = ast.parse(init.read_text())
        names = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets}
        if "__all__" not in names or not ast.get_docstring(tree):
            missing.append(str(init.relative_to(REPO)))
    assert not missing, "give these a docstring and __all__: " + ", ".join(missing)
