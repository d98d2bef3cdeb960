"""The ``petaseg`` command: the sub-commands composed in the pipeline's order, the global
``--version`` and ``--debug`` options, and ``main()``, the one place errors become exit codes.

A usage error (unknown option or command, missing argument, bad value) prints the usage line
and one message and exits 2; a user error prints one message and exits 2, failed blocks exit 3,
Ctrl-C 130 (``workflows.cli.exits``); anything else prints one line naming the log file with
its traceback and exits 1 (``workflows.cli.crash``; ``--debug`` prints the traceback)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Annotated

import typer
from typer.core import TyperGroup

from cluster.spec import BIND_ENV
from pipeline.provenance import package_version
from workflows.cli.commands import (
    bench,
    correct,
    export,
    predict,
    proofread,
    segment,
    train,
    train2d,
    volumes,
    workflow,
)
from workflows.cli.crash import log_unraisable, report_crash
from workflows.cli.exits import INTERRUPTED, known_failure
from workflows.cli.parsing import ClickError, click_group

# every command (a function) or command group (a Typer), in the order a run uses them
COMMANDS = {
    "info": volumes.info,
    "convert": volumes.convert,
    "predict": predict.predict,
    "segment": segment.segment,
    "fragments": segment.fragments,
    "graph": segment.graph,
    "agglomerate": segment.agglomerate,
    "relabel": segment.relabel,
    "evaluate": segment.evaluate,
    "correct": correct.correct,
    "correct-train": correct.correct_train,
    "proofread": proofread.group,
    "export": export.export,
    "view": export.view,
    "run": workflow.run,
    "submit": workflow.submit,
    "status": workflow.status,
    "demo": workflow.demo,
    "train": train.group,
    "train2d": train2d.group,
    "predict2d": train2d.predict2d,
    "bench": bench.bench,
}


class PipelineOrder(TyperGroup):
    """Lists the commands in ``COMMANDS`` order (typer lists groups after commands)."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [name for name in COMMANDS if name in self.commands]


@dataclass
class Session:
    """What the global options set for one ``main()`` call."""

    debug: bool = False


def show_version(value: bool) -> None:
    if value:
        print(f"petaseg {package_version()}")
        raise typer.Exit()


def global_options(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=show_version, help="print the version and exit"
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="print the traceback of an internal error (not a log file)"),
    ] = False,
    bind: Annotated[
        str | None,
        typer.Option(
            "--bind",
            help="address the embedded Dask cluster (scheduler, dashboard, workers) listens on; "
            "default 127.0.0.1 (0.0.0.0 makes the dashboard reachable from the network)",
        ),
    ] = None,
) -> None:
    if isinstance(ctx.obj, Session):
        ctx.obj.debug = debug
    if bind:
        os.environ[BIND_ENV] = bind


app = typer.Typer(
    name="petaseg",
    help="Neuron segmentation of EM volumes, blockwise on Dask: predict, segment, correct, export.",
    cls=PipelineOrder,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.callback()(global_options)
for _name, _command in COMMANDS.items():
    if isinstance(_command, typer.Typer):
        app.add_typer(_command, name=_name)
    else:
        app.command(_name)(_command)


def main(argv: list[str] | None = None) -> int:
    """Run ``petaseg`` with ``argv`` (default: the process's arguments); return the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    session = Session()
    bind = os.environ.get(BIND_ENV)
    try:
        code = click_group(app).main(
            args=args, prog_name="petaseg", standalone_mode=False, obj=session
        )
    except ClickError as e:
        e.show()
        return e.exit_code
    except typer.Abort:
        print("petaseg: aborted", file=sys.stderr)
        return INTERRUPTED
    except (Exception, KeyboardInterrupt) as e:
        known = known_failure(e)
        if known is None:
            return report_crash(e, args, session.debug)
        print(known[1], file=sys.stderr)
        return known[0]
    finally:  # --bind holds for this call only
        if bind is None:
            os.environ.pop(BIND_ENV, None)
        else:
            os.environ[BIND_ENV] = bind
    return code if isinstance(code, int) else 0


def entry() -> None:
    """The ``petaseg`` program: ``main()``, with exceptions Python cannot raise (at exit) logged
    instead of printed."""
    sys.unraisablehook = log_unraisable
    sys.exit(main())


if __name__ == "__main__":
    entry()
