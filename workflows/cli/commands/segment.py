"""``petaseg segment`` (boundary map -> segmentation) and its stages as commands: ``fragments``,
``graph``, ``agglomerate``, ``relabel``; and ``evaluate`` (VI and adapted Rand)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.errors import InputError
from workflows.cli.options import (
    Alpha,
    AsJson,
    Bins,
    Cluster,
    FragmentsArg,
    LocalThreshold,
    MaxGlobalEdges,
    MinSize,
    Mode,
    Scoring,
    SigmaSeeds,
    SigmaWeights,
    StageBlock,
    Tables,
    Thresholds,
    WatershedContext,
    WsThreshold,
    client_for,
    parse_zyx,
    print_json,
    print_per_threshold,
)

if TYPE_CHECKING:
    from pipeline.seg.watershed import FragmentParams

# where `segment` keeps its intermediate results
FragmentsOut = Annotated[
    str | None, typer.Option(help="fragments URL (default <output>_fragments)")
]
TablesOut = Annotated[str | None, typer.Option(help="tables folder (default beside the container)")]
# graph: fragments that `petaseg fragments` did not write; evaluate: label 0 of the ground truth
ForeignBlock = Annotated[
    str | None, typer.Option(help="block shape for foreign fragments (voxels)")
]
KeepGtZero = Annotated[
    bool, typer.Option(help="score ground-truth label 0 too (default: ignore it)")
]

FragmentMethod = Annotated[
    str,
    typer.Option(
        help="watershed (of a boundary map; of 1 - mean of nearest-neighbour affinities), "
        "affinity_watershed (seeded watershed over the faces' affinities) or mutex (mutex "
        "watershed of affinities with long-range offsets, as an affinity model predicts them)"
    ),
]
GraphFaces = Annotated[
    str,
    typer.Option(
        help="value of a contact face in the region graph: affinity (1 - the face's affinity), "
        "boundary (larger boundary value of its voxels) or auto (affinity for affinities)"
    ),
]
BiasShort = Annotated[
    float, typer.Option(help="mutex: nearest-neighbour edges above this affinity attract")
]
BiasLong = Annotated[
    float, typer.Option(help="mutex: long-range edges above this affinity attract (higher splits)")
]

SEGMENT_OPTIONS = {  # workflow key -> the option of `petaseg segment` it comes from
    "segment.thresholds": "--threshold",
    "fragments.threshold": "--ws-threshold",
    "fragments.sigma_seeds": "--sigma-seeds",
    "fragments.sigma_weights": "--sigma-weights",
    "fragments.alpha": "--alpha",
    "fragments.min_size": "--min-size",
    "fragments.mode": "--mode",
    "fragments.method": "--method",
    "fragments.bias_short": "--bias-short",
    "fragments.bias_long": "--bias-long",
    "fragments.block": "--block",
    "fragments.context": "--context",
    "graph.bins": "--bins",
    "graph.faces": "--faces",
    "agglomerate.scoring": "--scoring",
    "agglomerate.max_global_edges": "--max-global-edges",
    "agglomerate.local_threshold": "--local-threshold",
}


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


def fragment_params(
    ws_threshold: float,
    sigma_seeds: float,
    sigma_weights: float,
    alpha: float,
    min_size: int,
    mode: str,
) -> FragmentParams:
    """The watershed options as ``FragmentParams``, refused when out of range."""
    from pipeline.seg.watershed import FragmentParams

    if mode not in ("2d", "3d"):
        raise InputError(f"--mode {mode!r}: use 2d or 3d")
    if not 0.0 < ws_threshold <= 1.0:
        raise InputError(f"--ws-threshold {ws_threshold}: use a boundary value in (0, 1]")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"--alpha {alpha}: use a value in [0, 1]")
    return FragmentParams(ws_threshold, sigma_seeds, sigma_weights, alpha, min_size, mode)


def segment(
    boundaries: Annotated[str, typer.Option(help="boundary map (1 = membrane) or affinities URL")],
    output: Annotated[str, typer.Option(help="segmentation Zarr URL, e.g. out.zarr/segmentation")],
    threshold: Thresholds = None,
    cluster: Cluster = None,
    block: StageBlock = None,
    context: WatershedContext = None,
    fragments: FragmentsOut = None,
    tables: TablesOut = None,
    scoring: Scoring = "mean",
    bins: Bins = 32,
    max_global_edges: MaxGlobalEdges = 5_000_000,
    local_threshold: LocalThreshold = 0.5,
    ws_threshold: WsThreshold = 0.5,
    sigma_seeds: SigmaSeeds = 2.0,
    sigma_weights: SigmaWeights = 1.0,
    alpha: Alpha = 0.9,
    min_size: MinSize = 50,
    mode: Mode = "3d",
    method: FragmentMethod = "watershed",
    bias_short: BiasShort = 0.5,
    bias_long: BiasLong = 0.5,
    faces: GraphFaces = "auto",
    as_json: AsJson = False,
) -> None:
    """Boundary map (or affinities) -> fragments -> region graph -> agglomeration ->
    segmentation(s).
    Every stage is resumable: rerun the same command to finish an interrupted run."""
    from pipeline.stages.segment import DEFAULT_THRESHOLD
    from workflows.config import validated
    from workflows.run import segment_boundaries
    from workflows.schema import Stages

    params = fragment_params(ws_threshold, sigma_seeds, sigma_weights, alpha, min_size, mode)
    values = {
        "fragments": {
            **params.as_dict(),
            "method": method,
            "bias_short": bias_short,
            "bias_long": bias_long,
            "block": parse_zyx(block, "block"),
            "context": parse_context(context),
        },
        "graph": {"bins": bins, "faces": faces},
        "agglomerate": {
            "scoring": scoring,
            "max_global_edges": max_global_edges,
            "local_threshold": local_threshold,
        },
        "segment": {"thresholds": parse_thresholds(threshold, DEFAULT_THRESHOLD)},
    }
    stages = validated(Stages, "petaseg segment", values, SEGMENT_OPTIONS)
    with client_for(cluster) as client:
        result = segment_boundaries(
            boundaries, output, stages, client, not as_json, fragments, tables
        )
    if as_json:
        print_json(result)
    else:
        line = "segment: threshold {threshold:g}: {segments} segments from {fragments} fragments"
        print_per_threshold(result["segmentations"], line + " -> {segmentation}")


def fragments(
    boundaries: Annotated[str, typer.Argument(help="boundary map (1 = membrane) URL")],
    output: Annotated[str, typer.Argument(help="fragments Zarr URL (uint64)")],
    block: StageBlock = None,
    context: WatershedContext = None,
    cluster: Cluster = None,
    ws_threshold: WsThreshold = 0.5,
    sigma_seeds: SigmaSeeds = 2.0,
    sigma_weights: SigmaWeights = 1.0,
    alpha: Alpha = 0.9,
    min_size: MinSize = 50,
    mode: Mode = "3d",
    method: FragmentMethod = "watershed",
) -> None:
    """Seeded-watershed fragments with block-independent uint64 ids (resumable)."""
    from pipeline.stages.fragments import METHODS, run_fragments

    if method not in METHODS:
        raise InputError(
            f"--method {method!r}: use {' or '.join(METHODS)} (mutex: petaseg segment --method)"
        )

    params = fragment_params(ws_threshold, sigma_seeds, sigma_weights, alpha, min_size, mode)
    with client_for(cluster) as client:
        r = run_fragments(
            boundaries,
            output,
            params,
            parse_zyx(block, "block"),
            parse_context(context),
            client=client,
            method=method,
        )
    print(f"fragments: {r.blocks_run} blocks written, {r.blocks_skipped} already done")


def graph(
    fragments: FragmentsArg,
    boundaries: Annotated[str, typer.Argument(help="the boundary map the fragments came from")],
    tables: Tables,
    bins: Bins = 32,
    block: ForeignBlock = None,
    cluster: Cluster = None,
    faces: GraphFaces = "auto",
) -> None:
    """Region adjacency graph with boundary (or affinity) statistics, one Parquet table per
    block."""
    from pipeline.stages.graph import run_graph

    if faces not in ("auto", "affinity", "boundary"):
        raise InputError(f"--faces {faces!r}: use auto, affinity or boundary")
    with client_for(cluster) as client:
        r = run_graph(
            fragments, boundaries, tables, bins, parse_zyx(block, "block"), client, faces=faces
        )
    print(f"graph: {r.blocks_run} blocks written, {r.blocks_skipped} already done")


def agglomerate(
    tables: Tables,
    scoring: Scoring = "mean",
    max_global_edges: MaxGlobalEdges = 5_000_000,
    local_threshold: LocalThreshold = 0.5,
    cluster: Cluster = None,
    as_json: AsJson = False,
) -> None:
    """Hierarchical agglomeration: a merge score for every region-graph edge."""
    from pipeline.stages.agglomerate import run_agglomerate

    with client_for(cluster) as client:
        info = run_agglomerate(tables, scoring, max_global_edges, local_threshold, client)
    print(json.dumps(info) if as_json else f"agglomerate: {info}")


def relabel(
    fragments: FragmentsArg,
    output: Annotated[str, typer.Argument(help="segmentation Zarr URL (uint64)")],
    tables: Tables,
    threshold: Thresholds = None,
    cluster: Cluster = None,
) -> None:
    """Lookup tables at the thresholds (connected components of edges under them), then
    the segmentation, blockwise."""
    from pipeline.stages.relabel import relabel_luts
    from pipeline.stages.segment import DEFAULT_THRESHOLD, run_segment

    luts = run_segment(tables, parse_thresholds(threshold, DEFAULT_THRESHOLD))
    line = "relabel: threshold {threshold:g}: {segments} segments -> {segmentation}"
    with client_for(cluster) as client:
        print_per_threshold(relabel_luts(fragments, luts, output, client), line)


def evaluate(
    seg: Annotated[str, typer.Argument(help="segmentation URL")],
    gt: Annotated[str, typer.Argument(help="ground-truth URL (same shape)")],
    keep_gt_zero: KeepGtZero = False,
    block: Annotated[str | None, typer.Option(help="block shape Z,Y,X read at a time")] = None,
    as_json: AsJson = False,
) -> None:
    """VI split/merge (bits) and adapted Rand error, blockwise from contingency tables."""
    from pipeline.evaluate import evaluate_volumes

    scores = evaluate_volumes(seg, gt, not keep_gt_zero, parse_zyx(block, "block"))
    if as_json:
        print_json(scores)
    else:
        for k in ("vi_split", "vi_merge", "vi_sum", "adapted_rand"):
            print(f"{k}: {scores[k]:.4f}")
