"""The ``petaseg`` command line (the installed entry point is ``workflows.cli:entry``)."""

from workflows.cli.app import app, entry, main

__all__ = ["app", "entry", "main"]
