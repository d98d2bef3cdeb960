"""Config records (dataclasses read from YAML or a checkpoint's JSON): unknown options refused
by name, and values as JSON keeps them (tuples become lists, so a config read back compares
equal to the one written)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from models.errors import ConfigError


def refuse_unknown(options: Mapping, record: type, what: str) -> None:
    """ConfigError naming the keys of ``options`` that are not fields of the dataclass
    ``record`` (``what``: "training", "encoder", ...), with the known ones."""
    known = [f.name for f in fields(record)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown {what} option(s) {unknown}; known: {sorted(known)}")


def jsonable(value: Any) -> Any:
    """``value`` with every tuple (also inside lists and dicts) turned into a list."""
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value
