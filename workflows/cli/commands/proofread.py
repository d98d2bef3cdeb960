"""``petaseg proofread init|merge|split|undo|redo|log|export``: edits on a lookup table, kept in
a versioned SQLite edit log (see ``pipeline/proofread.py``)."""

from __future__ import annotations

import json

import typer

from pipeline.errors import InputError
from workflows.cli.options import print_json

AUTHOR = typer.Option(None, help="who made the edit (default: the login name)")
REASON = typer.Option("", help="why (kept in the log)")


def parse_point(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 3:
        raise InputError(f"--{what} {text!r}: expected Z,Y,X in nm, e.g. 800,1200,1500")
    return values


def _print(result, as_json: bool) -> None:
    if as_json:
        print_json(result.__dict__)
    else:
        print(
            f"edit #{result.edit_id} {result.op}: version {result.version}, "
            f"segments {result.segments}, {result.rows} table rows changed"
        )


def register(app: typer.Typer) -> None:  # noqa: C901 - one small function per command
    pr = typer.Typer(
        help="Proofreading edits (merge, split, undo, redo) with a versioned edit log.",
        no_args_is_help=True,
    )

    @pr.command()
    def init(
        log: str = typer.Argument(..., help="edit log file to create, e.g. out.proofread.sqlite"),
        lut: str = typer.Option(..., help="lookup table to start from (e.g. <tables>/luts/t0.5)"),
        fragments: str = typer.Option(
            None, help="fragments volume (found from the graph if not given)"
        ),
        graph: str = typer.Option(
            None, help="tables root with graph/ (found from --lut if not given)"
        ),
        author: str = AUTHOR,
    ) -> None:
        """Create an edit log whose version 0 is a copy of LUT."""
        from pipeline.proofread.editlog import EditLog

        with EditLog.create(log, lut, fragments, graph, author) as el:
            m = el.meta
            print(f"{log}: version 0, {len(el.lut(0))} fragments, {len(el.segments(0))} segments")
            print(f"fragments: {m.get('fragments')}\ngraph:     {m.get('graph')}")

    @pr.command()
    def merge(
        log: str = typer.Argument(...),
        a: int = typer.Argument(..., help="segment id"),
        b: int = typer.Argument(..., help="segment id"),
        author: str = AUTHOR,
        reason: str = REASON,
        expect_version: int = typer.Option(
            None, help="fail if the segments changed since this version"
        ),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Merge segments A and B (the result keeps the smaller id)."""
        from pipeline.proofread.editlog import EditLog

        with EditLog(log) as el:
            _print(el.merge(a, b, author, reason, expect_version), as_json)

    @pr.command()
    def split(
        log: str = typer.Argument(...),
        segment: int = typer.Argument(..., help="segment id to split"),
        source: list[str] = typer.Option(..., help="Z,Y,X nm of a point on one side (repeat)"),
        sink: list[str] = typer.Option(..., help="Z,Y,X nm of a point on the other side (repeat)"),
        author: str = AUTHOR,
        reason: str = REASON,
        expect_version: int = typer.Option(
            None, help="fail if the segment changed since this version"
        ),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Split SEGMENT by a minimum cut between the source and the sink points."""
        from pipeline.proofread.editlog import EditLog

        src = [parse_point(p, "source") for p in source]
        snk = [parse_point(p, "sink") for p in sink]
        with EditLog(log) as el:
            _print(el.split(segment, src, snk, author, reason, expect_version), as_json)

    @pr.command()
    def undo(
        log: str = typer.Argument(...),
        author: str = AUTHOR,
        reason: str = REASON,
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Revert the latest edit in effect (as a new version)."""
        from pipeline.proofread.editlog import EditLog

        with EditLog(log) as el:
            _print(el.undo(author, reason), as_json)

    @pr.command()
    def redo(
        log: str = typer.Argument(...),
        author: str = AUTHOR,
        reason: str = REASON,
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Re-apply the latest undone edit (as a new version)."""
        from pipeline.proofread.editlog import EditLog

        with EditLog(log) as el:
            _print(el.redo(author, reason), as_json)

    @pr.command("log")
    def show_log(
        log: str = typer.Argument(...),
        as_json: bool = typer.Option(False, "--json", help="one JSON object per edit"),
    ) -> None:
        """List the edits, oldest first."""
        from pipeline.proofread.editlog import EditLog

        with EditLog(log) as el:
            edits = el.log()
            if as_json:
                for e in edits:
                    print(json.dumps(e))
                return
            print(f"{log}: head version {el.head}, {len(edits)} edit(s)")
            for e in edits:
                why = f" ({e['reason']})" if e["reason"] else ""
                print(
                    f"#{e['id']:<4} v{e['version']:<4} {e['time']} {e['author']:<12} "
                    f"{e['op']:<5} {json.dumps(e['args'])}{why}"
                )

    @pr.command()
    def export(
        log: str = typer.Argument(...),
        output: str = typer.Option(..., help="folder for the lookup table (fragment, segment)"),
        version: int = typer.Option(None, help="version to export (default: the head)"),
        relabel: str = typer.Option(None, help="also write the segmentation volume to this URL"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Write any version as a lookup table (and optionally relabel the fragments with it)."""
        from pipeline.proofread.editlog import EditLog

        with EditLog(log) as el:
            info = el.export(output, version)
            fragments = el.meta.get("fragments")
        if relabel:
            if not fragments:
                raise InputError(f"{log} does not know the fragments volume; cannot --relabel")
            from pipeline.stages.relabel import run_relabel

            run_relabel(fragments, output, relabel, progress=not as_json)
            info["segmentation"] = relabel
        if as_json:
            print_json(info)
        else:
            print(f"version {info['version']}: {info['segments']} segments -> {output}")

    app.add_typer(pr, name="proofread")
