"""Config values as JSON keeps them: tuples become lists, recursively (checkpoints store configs
as plain dicts, so a config read back compares equal to the one written)."""

from __future__ import annotations

from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` with every tuple (also inside lists and dicts) turned into a list."""
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value
