"""Exit codes for scripts and the CLI: 2 for a user error, 3 for blocks that failed."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from cluster import ClusterSetupError
from models.errors import ModelError
from pipeline.errors import BlockFailures, PetasegError


@contextlib.contextmanager
def exit_on_failure() -> Iterator[None]:
    try:
        yield
    except BlockFailures as e:
        print(f"petaseg: {e}", file=sys.stderr)
        sys.exit(3)
    except (PetasegError, ModelError, ClusterSetupError) as e:
        print(f"petaseg: error: {e}", file=sys.stderr)
        sys.exit(2)
