"""The ``petaseg`` command. Sub-commands live in ``pipeline/commands/<name>.py``, each with a
``register(app)``; every module there is registered, so a stage adds its command without
touching this file. User errors print as one message and exit 2; failed blocks exit 3."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click
import typer

from cluster import ClusterSetupError
from models.errors import ModelError
from pipeline.errors import BlockFailures, PetasegError

app = typer.Typer(
    name="petaseg",
    help="Neuron segmentation of EM volumes, blockwise on Dask: predict, segment, correct, export.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


COMMAND_PACKAGES = ["workflows.cli.commands"]
_registered: set[str] = set()


def _register_commands(packages: list[str]) -> None:
    for package_name in packages:
        if package_name in _registered:
            continue
        _registered.add(package_name)
        package = importlib.import_module(package_name)
        for mod in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{package_name}.{mod.name}")
            register = getattr(module, "register", None)
            if register is not None:
                register(app)


def main(argv: list[str] | None = None, packages: list[str] | None = None) -> int:
    """Run the CLI. ``packages`` lists the command packages (the ``petaseg`` entry point in
    ``workflows/cli.py`` adds ``workflows.commands``, which may use everything)."""
    _register_commands(packages or COMMAND_PACKAGES)
    try:
        app(args=argv, standalone_mode=False)
    except BlockFailures as e:
        print(f"petaseg: {e}", file=sys.stderr)
        return 3
    except (PetasegError, ModelError, ClusterSetupError) as e:
        print(f"petaseg: error: {e}", file=sys.stderr)
        return 2
    except click.exceptions.Abort:
        print("petaseg: aborted", file=sys.stderr)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    return 0


def entry() -> None:
    sys.exit(main())  # pipeline commands only; the installed entry point is workflows.cli


if __name__ == "__main__":
    entry()
