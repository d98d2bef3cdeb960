"""The click layer under typer: its exception base and a context that makes every usage error
print its command's usage line."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

# typer bundles its own click; the base of its exceptions is reached through the public
# typer.BadParameter rather than by importing the private typer._click
ClickError: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


class UsageContext(typer.Context):
    """Names itself in a usage error raised without a context (the parser's "option requires
    an argument"), so that every usage error prints its command's usage line."""

    def __exit__(self, exc_type, exc_value, tb) -> bool | None:
        if isinstance(exc_value, ClickError) and getattr(exc_value, "ctx", self) is None:
            exc_value.ctx, exc_value.cmd = self, self.command
        return super().__exit__(exc_type, exc_value, tb)


def click_group(app: typer.Typer) -> TyperGroup:
    """The click group behind ``app``, every command in it making ``UsageContext``s."""
    group = typer.main.get_command(app)
    commands = [group]
    while commands:
        command = commands.pop()
        command.context_class = UsageContext
        commands.extend(getattr(command, "commands", {}).values())
    return group
