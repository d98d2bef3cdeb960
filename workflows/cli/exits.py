"""Exit codes, one mapping for the ``petaseg`` command and for scripts (``exit_on_failure``):
a user error prints ``petaseg: error: <message>`` and exits 2 (so does a usage error, printed by
the command line parser), failed blocks exit 3, Ctrl-C 130; anything else is an internal error,
exit 1 (see ``workflows.cli.crash``)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from cluster import ClusterSetupError
from models.errors import ModelError
from pipeline.errors import BlockFailures, PetasegError

INTERNAL_ERROR = 1
USER_ERROR = 2  # also the parser's code for a usage error
BLOCKS_FAILED = 3
INTERRUPTED = 130


def known_failure(error: BaseException) -> tuple[int, str] | None:
    """The exit code and the message for an error a user can act on; None for any other."""
    if isinstance(error, BlockFailures):
        return BLOCKS_FAILED, f"petaseg: {error}"
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED, "petaseg: interrupted"
    if isinstance(error, (PetasegError, ClusterSetupError, ModelError)):
        return USER_ERROR, f"petaseg: error: {error}"
    return None


@contextlib.contextmanager
def exit_on_failure() -> Iterator[None]:
    """``with exit_on_failure():`` in a script: a known failure prints its message and exits
    with its code; any other error propagates with its traceback."""
    try:
        yield
    except (Exception, KeyboardInterrupt) as e:
        known = known_failure(e)
        if known is None:
            raise
        code, message = known
        print(message, file=sys.stderr)
        sys.exit(code)
