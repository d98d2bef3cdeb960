"""A workflow step: what it is called, what it needs, the part of the configuration it hashes,
and the function that runs it on a ``RunContext``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import InputError
from workflows.schema import Stages


@dataclass
class RunContext:
    """What the steps of one run share: the validated stage sections, the client, and the
    values the steps have produced so far (volume URLs, tables, lookup tables, metrics...)."""

    stages: Stages
    client: Any
    progress: bool = True
    values: dict[str, Any] = field(default_factory=dict)

    def need(self, name: str, step: str) -> Any:
        """A value an earlier step produced, or a clear error naming what is missing."""
        if self.values.get(name) is None:
            raise InputError(f"step '{step}' needs '{name}', which no earlier step produced")
        return self.values[name]


@dataclass(frozen=True)
class Step:
    """A step of a workflow. ``run(ctx)`` returns the step's record (JSON-able); the keys named in
    ``provides`` become values for the steps after it. What the stage log hashes is the step's
    stage section (``section``, e.g. ``stages.fragments``) or ``config(ctx)``: a changed
    configuration reruns the step and everything after it. ``writes(ctx)`` names what the step
    writes, so a plan is checked against its inputs before any step runs."""

    name: str
    needs: tuple[str, ...]
    provides: tuple[str, ...]
    run: Callable[[RunContext], dict[str, Any]]
    section: str | None = None
    config: Callable[[RunContext], Any] | None = None
    writes: Callable[[RunContext], list[str]] | None = None

    def configuration(self, ctx: RunContext) -> Any:
        if self.config is not None:
            return self.config(ctx)
        return getattr(ctx.stages, self.section or self.name).model_dump()

    def outputs(self, ctx: RunContext) -> list[str]:
        """The volumes, tables and files the step will write (known before it runs)."""
        return self.writes(ctx) if self.writes is not None else []

    def __call__(self, ctx: RunContext) -> dict[str, Any]:
        for name in self.needs:
            ctx.need(name, self.name)
        return self.run(ctx)
