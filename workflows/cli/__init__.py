"""The installed ``petaseg`` entry point: pipeline commands plus workflow commands."""

from __future__ import annotations

import sys

from workflows.cli.app import main as _main

PACKAGES = ["workflows.cli.commands"]


def main(argv: list[str] | None = None) -> int:
    return _main(argv, PACKAGES)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
