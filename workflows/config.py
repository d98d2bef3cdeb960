"""Loading a workflow: YAML (safe_load), ``--set key=value`` overrides, validation by key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``stages.segment.thresholds=[0.3,0.5]`` sets a nested key; the value is parsed as YAML."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"--set {item!r}: expected key=value, e.g. stages.predict.overlap=0.25"
            )
        key, raw = item.split("=", 1)
        path = [p for p in key.strip().split(".") if p]
        if not path:
            raise ConfigError(f"--set {item!r}: the key is empty")
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = child
        try:
            node[path[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            problem = str(getattr(e, "problem", None) or e).splitlines()[0]
            raise ConfigError(
                f"--set {item!r}: the value {raw!r} is not valid YAML ({problem}); "
                "quote it or close its brackets, e.g. stages.segment.thresholds=[0.4,0.5]"
            ) from None
    return data


def format_validation_error(
    error: ValidationError,
    source: str,
    what: str = "workflow",
    names: dict[str, str] | None = None,
) -> str:
    """One line per problem, each naming its key path (or, through ``names``, the command-line
    option a key came from: ``{"segment.thresholds": "--threshold"}``)."""
    lines = [f"{source}: invalid {what}"]
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        for key, option in (names or {}).items():
            if where == key or where.startswith(key + "."):
                where = option
                break
        if e["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown key (check the spelling; see workflows/examples/)")
        elif e["type"] == "missing":
            lines.append(f"  {where}: required key is missing")
        else:
            lines.append(f"  {where}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def validated(
    model: type[M], source: str, values: dict[str, Any], names: dict[str, str] | None = None
) -> M:
    """``model`` validated from ``values``; a wrong value is a ConfigError naming its key path
    or the option it came from (``names``)."""
    try:
        return model.model_validate(values)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source, "values", names)) from None


def load_config(
    model: type[BaseModel],
    path: str | Path | None,
    overrides: list[str] | None = None,
    data: dict[str, Any] | None = None,
) -> BaseModel:
    """Read and validate a workflow file; every problem names the key path and the file."""
    source = str(path) if path else "workflow"
    if data is None:
        if path is None:
            raise ConfigError("no workflow file given")
        p = Path(path)
        if not p.exists():
            raise ConfigError(
                f"workflow file {p} does not exist; see workflows/examples/ for templates"
            )
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"{p}: the top level must be a mapping of keys, got {type(data).__name__}"
            )
    data = apply_overrides(data, overrides or [])
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from None
