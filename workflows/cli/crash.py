"""The unexpected error: one line naming a log file that holds the traceback (or, with
``petaseg --debug``, the traceback itself); exit code 1."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from pipeline.provenance import package_version
from workflows.cli.exits import INTERNAL_ERROR


def log_folders() -> list[Path]:
    """Where tracebacks go: ``$XDG_STATE_HOME/petaseg`` (default ``~/.local/state/petaseg``),
    else the temporary folder."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return [Path(state) / "petaseg", Path(tempfile.gettempdir())]


def write_traceback(error: BaseException, argv: list[str]) -> Path | None:
    """Write the command line, version and traceback to ``petaseg-<timestamp>-<pid>.log`` in
    the first writable log folder; None when none is."""
    name = f"petaseg-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    text = f"petaseg {package_version()}\ncommand: petaseg {' '.join(argv)}\n\n" + "".join(
        traceback.format_exception(error)
    )
    for folder in log_folders():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        except OSError:
            continue
        return folder / name
    return None


def log_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """``sys.unraisablehook`` of the CLI: an exception Python cannot raise (a remote store's
    coroutine abandoned when the process ends after an error) goes to a log file, not stderr,
    so the user sees the one message about the error and no traceback."""
    error = unraisable.exc_value
    if error is None:
        return
    note = f"unraisable in {unraisable.object!r}: {unraisable.err_msg or ''}"
    error.add_note(note)
    write_traceback(error, ["(unraisable)"])


def report_crash(error: BaseException, argv: list[str], debug: bool = False) -> int:
    """Print the unexpected ``error`` as one line (its traceback logged) or, with ``debug``,
    its traceback; return the exit code."""
    if debug:
        traceback.print_exception(error, file=sys.stderr)
        return INTERNAL_ERROR
    lines = str(error).strip().splitlines()
    message = lines[0] + (" ..." if len(lines) > 1 else "") if lines else ""
    path = write_traceback(error, argv)
    where = f"the traceback is in {path}" if path else "rerun with --debug for the traceback"
    print(f"petaseg: internal error: {type(error).__name__}: {message}; {where}", file=sys.stderr)
    return INTERNAL_ERROR
