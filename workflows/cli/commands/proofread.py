"""``petaseg proofread init|merge|split|undo|redo|log|export|view``: edits on a lookup table, kept in
a versioned SQLite edit log (see ``pipeline/proofread/editlog.py``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from pipeline.errors import InputError
from workflows.cli.options import (
    AsJson,
    Author,
    Cluster,
    EditLogFile,
    ExpectVersion,
    Reason,
    client_for,
    print_json,
)

# a new edit log: its file, the lookup table it starts from, and where it finds what the
# lookup table does not name
NewEditLog = Annotated[
    str, typer.Argument(help="edit log file to create, e.g. out.proofread.sqlite")
]
StartLut = Annotated[str, typer.Option(help="lookup table to start from (e.g. <tables>/luts/t0.5)")]
LogFragments = Annotated[
    str | None, typer.Option(help="fragments volume (found from the graph if not given)")
]
LogGraph = Annotated[
    str | None, typer.Option(help="tables root with graph/ (found from --lut if not given)")
]
# what proofread export writes
Version = Annotated[int | None, typer.Option(help="version to export (default: the head)")]
RelabelUrl = Annotated[
    str | None, typer.Option(help="also write the segmentation volume to this URL")
]


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


def init(
    log: NewEditLog,
    lut: StartLut,
    fragments: LogFragments = None,
    graph: LogGraph = None,
    author: Author = None,
) -> None:
    """Create an edit log whose version 0 is a copy of LUT."""
    from pipeline.proofread.editlog import EditLog

    with EditLog.create(log, lut, fragments, graph, author) as el:
        m = el.meta
        print(f"{log}: version 0, {len(el.lut(0))} fragments, {len(el.segments(0))} segments")
        print(f"fragments: {m.get('fragments')}\ngraph:     {m.get('graph')}")


def merge(
    log: EditLogFile,
    a: Annotated[int, typer.Argument(help="segment id")],
    b: Annotated[int, typer.Argument(help="segment id")],
    author: Author = None,
    reason: Reason = "",
    expect_version: ExpectVersion = None,
    as_json: AsJson = False,
) -> None:
    """Merge segments A and B (the result keeps the smaller id)."""
    from pipeline.proofread.editlog import EditLog

    with EditLog(log) as el:
        _print(el.merge(a, b, author, reason, expect_version), as_json)


def split(
    log: EditLogFile,
    segment: Annotated[int, typer.Argument(help="segment id to split")],
    source: Annotated[list[str], typer.Option(help="Z,Y,X nm of a point on one side (repeat)")],
    sink: Annotated[list[str], typer.Option(help="Z,Y,X nm of a point on the other side (repeat)")],
    author: Author = None,
    reason: Reason = "",
    expect_version: ExpectVersion = None,
    as_json: AsJson = False,
) -> None:
    """Split SEGMENT by a minimum cut between the source and the sink points."""
    from pipeline.proofread.editlog import EditLog

    src = [parse_point(p, "source") for p in source]
    snk = [parse_point(p, "sink") for p in sink]
    with EditLog(log) as el:
        _print(el.split(segment, src, snk, author, reason, expect_version), as_json)


# the commands that replay the log, and their help
REPLAYS = {
    "undo": "Revert the latest edit in effect (as a new version).",
    "redo": "Re-apply the latest undone edit (as a new version).",
}


def replay(
    ctx: typer.Context,
    log: EditLogFile,
    author: Author = None,
    reason: Reason = "",
    as_json: AsJson = False,
) -> None:
    """``proofread undo`` reverts the latest edit in effect, ``proofread redo`` re-applies the
    latest undone edit; either is logged as a new version."""
    from pipeline.proofread.editlog import EditLog

    with EditLog(log) as el:
        step = el.undo if ctx.info_name == "undo" else el.redo
        _print(step(author, reason), as_json)


def show_log(
    log: EditLogFile,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per edit")] = False,
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


def export(
    log: EditLogFile,
    output: Annotated[str, typer.Option(help="folder for the lookup table (fragment, segment)")],
    version: Version = None,
    relabel: RelabelUrl = None,
    cluster: Cluster = None,
    as_json: AsJson = False,
) -> None:
    """Write any version as a lookup table (and optionally relabel the fragments with it, on
    ``--cluster``: an embedded LocalCluster by default)."""
    from pipeline.proofread.editlog import EditLog

    with EditLog(log) as el:
        info = el.export(output, version)
        fragments = el.meta.get("fragments")
    if relabel:
        if not fragments:
            raise InputError(f"{log} does not know the fragments volume; cannot --relabel")
        from pipeline.stages.relabel import run_relabel

        with client_for(cluster) as client:
            run_relabel(fragments, output, relabel, client=client, progress=not as_json)
        info["segmentation"] = relabel
    if as_json:
        print_json(info)
    else:
        print(f"version {info['version']}: {info['segments']} segments -> {output}")


def view(
    log: EditLogFile,
    author: Author = None,
    image: Annotated[
        str | None, typer.Option(help="EM image volume URL shown under the segments")
    ] = None,
    candidates: Annotated[
        str | None,
        typer.Option(help="ranked candidates JSON (default: candidates.json beside LOG)"),
    ] = None,
    bind: Annotated[
        str, typer.Option(help="address to listen on (127.0.0.1; 0.0.0.0 for other machines)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="the one port for viewer and data (0 = free)")] = 0,
    seconds: Annotated[
        float, typer.Option(help="stop after this many seconds (0 = serve until Ctrl-C)")
    ] = 0,
) -> None:
    """Proofread LOG in a Neuroglancer viewer: merge, split, undo, redo and the ranked
    candidates on key bindings, every edit written to the log."""
    import time

    from pipeline.proofread.session import ProofreadSession, help_line

    with ProofreadSession(log, author, image, candidates, bind, port) as session:
        print(f"viewer: {session.url}", flush=True)
        print(f"version {session.version} of {log}; {len(session.queue)} candidates", flush=True)
        print(f"keys: {help_line()}", flush=True)
        deadline = time.monotonic() + seconds if seconds > 0 else None
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass


group = typer.Typer(
    help="Proofreading edits (merge, split, undo, redo) with a versioned edit log.",
    no_args_is_help=True,
)
group.command()(init)
group.command()(merge)
group.command()(split)
for _name, _help in REPLAYS.items():
    group.command(_name, help=_help)(replay)
group.command("log")(show_log)
group.command()(export)
group.command()(view)
