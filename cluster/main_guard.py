"""Worker processes and the script that starts them. Dask starts worker processes with the spawn
method, and a spawned process first re-runs the main script; a script that starts a process-based
cluster outside ``if __name__ == "__main__":`` would start one again in every worker
("Nanny failed to start"). ``processes_or_threads`` keeps such a call working: on threads, with a
warning that names the line and the fix. Notebooks, interactive sessions, ``python -c`` and calls
under the guard keep their worker processes."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import multiprocessing
import os
import sys
import warnings
from types import FrameType

import dask

from cluster.errors import ClusterSetupError
from cluster.spec import ClusterSpec

GUARD = 'if __name__ == "__main__":'


def processes_or_threads(spec: ClusterSpec) -> ClusterSpec:
    """``spec``, or for a ``local`` (process) cluster started at module level of a script
    outside the guard, the same cluster on threads (with a warning). In a worker process that is
    re-running such a script as it starts, a ``ClusterSetupError`` naming the fix."""
    if spec.kind != "local":
        return spec
    line = unguarded_script_line()
    if line is None:
        return spec
    path, lineno = line
    if multiprocessing.parent_process() is not None and _main_module().__name__ == "__mp_main__":
        raise ClusterSetupError(
            f"{path}:{lineno} starts a Dask cluster while a worker process re-runs the script; "
            f"put the code that starts it under `{GUARD}`"
        )
    warnings.warn_explicit(
        f"petaseg: this line starts a process-based Dask cluster outside `{GUARD}`, and each "
        "worker process would re-run the script; running on threads instead (put the code "
        "under that guard for worker processes)",
        RuntimeWarning,
        path,
        lineno,
    )
    return dataclasses.replace(spec, kind="threads")


def unguarded_script_line() -> tuple[str, int] | None:
    """(file, line) of the main script's module-level line that is making this call outside
    ``if __name__ == "__main__":``, when worker processes would re-run that script; None in a
    notebook or an interactive session (no script file), with the fork start method, or when the
    call comes from under the guard or from code run after the script."""
    path = getattr(_main_module(), "__file__", None)
    if not path or _start_method() == "fork":
        return None
    frame = _module_frame_of(path)
    if frame is None or frame.f_lineno in _guarded_lines(path):
        return None
    return path, frame.f_lineno


def _main_module():
    return sys.modules["__main__"]


def _start_method() -> str:
    return dask.config.get("distributed.worker.multiprocessing-method", "spawn")


def _module_frame_of(path: str) -> FrameType | None:
    """The frame running the module-level code of the file ``path``, if one is on the stack."""
    target = os.path.realpath(path)
    frame = inspect.currentframe()
    while frame is not None:
        code = frame.f_code
        if code.co_name == "<module>" and os.path.realpath(code.co_filename) == target:
            return frame
        frame = frame.f_back
    return None


def _guarded_lines(path: str) -> set[int]:
    """The lines of ``path`` under an ``if __name__ == "__main__":`` (none when the source
    cannot be read: such a script is treated as unguarded)."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return set()
    return {
        line
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_main_test(node.test)
        for line in range(node.body[0].lineno, node.body[-1].end_lineno + 1)
    }


def _is_main_test(test: ast.expr) -> bool:
    """Whether ``test`` is ``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = (test.left, test.comparators[0])
    names = {s.id for s in sides if isinstance(s, ast.Name)}
    values = {s.value for s in sides if isinstance(s, ast.Constant)}
    return names == {"__name__"} and values == {"__main__"}
