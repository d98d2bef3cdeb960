"""``petaseg segment`` (boundary map -> segmentation) and its stages as commands: ``fragments``,
``graph``, ``agglomerate``, ``relabel``; and ``evaluate`` (VI and adapted Rand)."""

from __future__ import annotations

import json

import typer

from pipeline.errors import InputError
from workflows.cli.options import client_for, parse_zyx, print_json

CLUSTER_HELP = "local, local:N, threads[:N], tcp://host:port or tls://host:port"


def parse_thresholds(values: list[str] | None, default: float) -> list[float]:
    """``--threshold 0.5 --threshold 0.7`` or ``--threshold 0.5,0.7``."""
    if not values:
        return [default]
    out = []
    for v in values:
        for part in str(v).split(","):
            if not part.strip():
                continue
            try:
                out.append(float(part))
            except ValueError:
                raise InputError(f"--threshold {part!r}: expected a number such as 0.5") from None
    return sorted(set(out))


def parse_context(text: str | None) -> tuple[int, int, int] | None:
    """Z,Y,X voxels (or one number for all axes); zeros are allowed."""
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise InputError(f"--context {text!r}: expected Z,Y,X integers, e.g. 16,16,16") from None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or any(v < 0 for v in values):
        raise InputError(f"--context {text!r}: expected three integers >= 0")
    return values  # type: ignore[return-value]


def fragment_params(ws_threshold, sigma_seeds, sigma_weights, alpha, min_size, mode):
    from pipeline.seg.watershed import FragmentParams

    if mode not in ("2d", "3d"):
        raise InputError(f"--mode {mode!r}: use 2d or 3d")
    if not 0.0 < ws_threshold <= 1.0:
        raise InputError(f"--ws-threshold {ws_threshold}: use a boundary value in (0, 1]")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"--alpha {alpha}: use a value in [0, 1]")
    return FragmentParams(ws_threshold, sigma_seeds, sigma_weights, alpha, min_size, mode)


def register(app: typer.Typer) -> None:  # noqa: C901 - one function per command, flat
    ws_opts = {
        "ws_threshold": typer.Option(
            0.5, help="boundary >= this is membrane for the seed distance transform"
        ),
        "sigma_seeds": typer.Option(2.0, help="smoothing of the distance transform (voxels)"),
        "sigma_weights": typer.Option(1.0, help="smoothing of the flooding height (voxels)"),
        "alpha": typer.Option(0.9, help="height = alpha*boundary + (1-alpha)*(1-distance)"),
        "min_size": typer.Option(50, help="fragments under this many voxels join a neighbour"),
        "mode": typer.Option("3d", help="3d, or 2d (one watershed per z-section)"),
    }

    @app.command()
    def segment(
        boundaries: str = typer.Option(..., help="boundary map (1 = membrane) or affinities URL"),
        output: str = typer.Option(..., help="segmentation Zarr URL, e.g. out.zarr/segmentation"),
        threshold: list[str] = typer.Option(
            None,
            help="merge threshold(s) on the mean boundary (default 0.7); repeat or "
            "comma-separate for several outputs",
        ),
        cluster: str = typer.Option(None, help=CLUSTER_HELP),
        block: str = typer.Option(None, help="block shape Z,Y,X in voxels (default 128^3)"),
        context: str = typer.Option(None, help="watershed context Z,Y,X in voxels (default 16)"),
        fragments: str = typer.Option(None, help="fragments URL (default <output>_fragments)"),
        tables: str = typer.Option(None, help="tables folder (default beside the container)"),
        scoring: str = typer.Option("mean", help="mean, median, quantile:0.75"),
        bins: int = typer.Option(32, help="histogram bins per edge (quantile scoring)"),
        max_global_edges: int = typer.Option(
            5_000_000, help="above this many edges agglomerate in two levels"
        ),
        local_threshold: float = typer.Option(
            0.5, help="two-level scheme: blockwise merges below this"
        ),
        ws_threshold: float = ws_opts["ws_threshold"],
        sigma_seeds: float = ws_opts["sigma_seeds"],
        sigma_weights: float = ws_opts["sigma_weights"],
        alpha: float = ws_opts["alpha"],
        min_size: int = ws_opts["min_size"],
        mode: str = ws_opts["mode"],
        as_json: bool = typer.Option(False, "--json", help="print a JSON summary"),
    ) -> None:
        """Boundary map -> fragments -> region graph -> agglomeration -> segmentation(s).
        Every stage is resumable: rerun the same command to finish an interrupted run."""
        from pipeline.stages.segment import DEFAULT_THRESHOLD
        from workflows.config import validated
        from workflows.run import segment_boundaries
        from workflows.schema import Stages

        params = fragment_params(ws_threshold, sigma_seeds, sigma_weights, alpha, min_size, mode)
        stages = validated(
            Stages,
            "petaseg segment options",
            fragments={
                **params.as_dict(),
                "block": parse_zyx(block, "block"),
                "context": parse_context(context),
            },
            graph={"bins": bins},
            agglomerate={
                "scoring": scoring,
                "max_global_edges": max_global_edges,
                "local_threshold": local_threshold,
            },
            segment={"thresholds": parse_thresholds(threshold, DEFAULT_THRESHOLD)},
        )
        with client_for(cluster) as client:
            result = segment_boundaries(
                boundaries, output, stages, client, not as_json, fragments, tables
            )
        if as_json:
            print_json(result)
        else:
            for s in result["segmentations"]:
                print(
                    f"segment: threshold {s['threshold']:g}: {s['segments']} segments from "
                    f"{s['fragments']} fragments -> {s['segmentation']}"
                )

    @app.command()
    def fragments(
        boundaries: str = typer.Argument(..., help="boundary map (1 = membrane) URL"),
        output: str = typer.Argument(..., help="fragments Zarr URL (uint64)"),
        block: str = typer.Option(None, help="block shape Z,Y,X in voxels (default 128^3)"),
        context: str = typer.Option(None, help="context Z,Y,X in voxels (default 16)"),
        cluster: str = typer.Option(None, help=CLUSTER_HELP),
        ws_threshold: float = ws_opts["ws_threshold"],
        sigma_seeds: float = ws_opts["sigma_seeds"],
        sigma_weights: float = ws_opts["sigma_weights"],
        alpha: float = ws_opts["alpha"],
        min_size: int = ws_opts["min_size"],
        mode: str = ws_opts["mode"],
    ) -> None:
        """Seeded-watershed fragments with block-independent uint64 ids (resumable)."""
        from pipeline.stages.fragments import run_fragments

        params = fragment_params(ws_threshold, sigma_seeds, sigma_weights, alpha, min_size, mode)
        with client_for(cluster) as client:
            r = run_fragments(
                boundaries,
                output,
                params,
                parse_zyx(block, "block"),
                parse_context(context),
                client=client,
            )
        print(f"fragments: {r.blocks_run} blocks written, {r.blocks_skipped} already done")

    @app.command()
    def graph(
        fragments: str = typer.Argument(..., help="fragments URL"),
        boundaries: str = typer.Argument(..., help="the boundary map the fragments came from"),
        tables: str = typer.Option(..., help="folder (or s3:// prefix) for the tables"),
        bins: int = typer.Option(32, help="histogram bins per edge"),
        block: str = typer.Option(None, help="block shape for foreign fragments (voxels)"),
        cluster: str = typer.Option(None, help=CLUSTER_HELP),
    ) -> None:
        """Region adjacency graph with boundary statistics, one Parquet table per block."""
        from pipeline.stages.graph import run_graph

        with client_for(cluster) as client:
            r = run_graph(fragments, boundaries, tables, bins, parse_zyx(block, "block"), client)
        print(f"graph: {r.blocks_run} blocks written, {r.blocks_skipped} already done")

    @app.command()
    def agglomerate(
        tables: str = typer.Option(..., help="tables folder written by `petaseg graph`"),
        scoring: str = typer.Option("mean", help="mean, median, quantile:0.75"),
        max_global_edges: int = typer.Option(5_000_000, help="above this, two-level scheme"),
        local_threshold: float = typer.Option(0.5, help="two-level: blockwise merges below"),
        cluster: str = typer.Option(None, help=CLUSTER_HELP),
        as_json: bool = typer.Option(False, "--json", help="print a JSON summary"),
    ) -> None:
        """Hierarchical agglomeration: a merge score for every region-graph edge."""
        from pipeline.stages.agglomerate import run_agglomerate

        with client_for(cluster) as client:
            info = run_agglomerate(tables, scoring, max_global_edges, local_threshold, client)
        print(json.dumps(info) if as_json else f"agglomerate: {info}")

    @app.command()
    def relabel(
        fragments: str = typer.Argument(..., help="fragments URL"),
        output: str = typer.Argument(..., help="segmentation Zarr URL (uint64)"),
        tables: str = typer.Option(..., help="tables folder with merge scores"),
        threshold: list[str] = typer.Option(None, help="threshold(s); several -> <output>_t<T>"),
        cluster: str = typer.Option(None, help=CLUSTER_HELP),
    ) -> None:
        """Lookup tables at the thresholds (connected components of edges under them), then
        the segmentation, blockwise."""
        from pipeline.stages.relabel import relabel_luts
        from pipeline.stages.segment import DEFAULT_THRESHOLD, run_segment

        luts = run_segment(tables, parse_thresholds(threshold, DEFAULT_THRESHOLD))
        with client_for(cluster) as client:
            for s in relabel_luts(fragments, luts, output, client):
                print(
                    f"relabel: threshold {s['threshold']:g}: "
                    f"{s['segments']} segments -> {s['segmentation']}"
                )

    @app.command()
    def evaluate(
        seg: str = typer.Argument(..., help="segmentation URL"),
        gt: str = typer.Argument(..., help="ground-truth URL (same shape)"),
        keep_gt_zero: bool = typer.Option(
            False, help="score ground-truth label 0 too (default: ignore it)"
        ),
        block: str = typer.Option(None, help="block shape Z,Y,X read at a time"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        """VI split/merge (bits) and adapted Rand error, blockwise from contingency tables."""
        from pipeline.evaluate import evaluate_volumes

        scores = evaluate_volumes(seg, gt, not keep_gt_zero, parse_zyx(block, "block"))
        if as_json:
            print_json(scores)
        else:
            for k in ("vi_split", "vi_merge", "vi_sum", "adapted_rand"):
                print(f"{k}: {scores[k]:.4f}")
