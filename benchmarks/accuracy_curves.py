"""Curves of ``petaseg bench accuracy``: the figures of one part at every candidate setting,
for petaseg's configs (watershed or mutex fragments -> region graph -> mean or learned
agglomeration, cut at each threshold) and for the peers on the same affinities (waterz;
elf's multicut on petaseg's region graph)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml

from benchmarks.accuracy_data import REPO

EXAMPLE = REPO / "workflows" / "examples" / "fib_medulla.yaml"
GRID = (0.02, 0.05) + tuple(round(0.05 * i, 2) for i in range(2, 20))  # 0.02, 0.05, 0.10 .. 0.95
BIASES = (0.3, 0.5, 0.7, 0.9)  # mutex bias_long (bias_short 0.5)
FRAGMENT_THRESHOLDS = (0.2, 0.35, 0.5)  # watershed; 0.5 is the example workflow's
BETAS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # multicut boundary bias


def floats(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    value = os.environ.get(name)
    return tuple(float(v) for v in value.split(",")) if value else default


def thresholds() -> tuple[float, ...]:
    return floats("PETASEG_BENCH_ACCURACY_THRESHOLDS", GRID)


def example_fragments():
    """The fragments section of the shipped example workflow (block, context, threshold,
    min_size): the bench segments as ``petaseg run`` would."""
    from workflows.schema import FragmentsStage

    cfg = yaml.safe_load(EXAMPLE.read_text())
    return FragmentsStage(**cfg["stages"]["fragments"])


def fragment_thresholds() -> tuple[float, ...]:
    return floats("PETASEG_BENCH_ACCURACY_FRAGMENT_THRESHOLDS", FRAGMENT_THRESHOLDS)


def segment_part(
    pred_url: str,
    root: Path,
    client,
    bias: float | None = None,
    threshold: float = 0.5,
    sigma_seeds: float | None = None,
    method: str = "watershed",
) -> tuple[str, str]:
    """Fragments (``method`` watershed or affinity_watershed at fragments ``threshold`` and,
    when given, ``sigma_seeds``, or mutex with ``bias_long=bias``) and region graph of one
    part's prediction under ``root``; resumes from done markers. Returns (fragments URL,
    tables)."""
    from pipeline.seg.mutex import MutexParams
    from pipeline.stages.fragments import run_fragments
    from pipeline.stages.graph import run_graph
    from pipeline.stages.mutex import run_mutex_fragments
    from workflows.steps.segmentation import fragment_params

    update: dict = {"threshold": threshold}
    prefix = "ws" if method == "watershed" else method
    name = f"{prefix}-{threshold}" if bias is None else f"mutex-{bias}"
    if sigma_seeds is not None:
        update["sigma_seeds"] = sigma_seeds
        name += f"-seeds{sigma_seeds}"
    section = example_fragments().model_copy(update=update)
    frag, tables = str(root / f"{name}.zarr" / "fragments"), str(root / f"{name}-tables")
    if bias is None:
        params = fragment_params(section)
        args = (section.block, section.context, client, False)
        run_fragments(pred_url, frag, params, *args, method=method)
    else:
        params = MutexParams(0.5, bias)
        run_mutex_fragments(pred_url, frag, params, section.block, None, client, False)
    run_graph(frag, pred_url, tables, 32, client=client, progress=False)
    return frag, tables


def truth_of(frag_url: str, gt_url: str):
    from pipeline.correct.truth import FragmentTruth

    t = FragmentTruth.from_volumes(frag_url, gt_url)
    return t.fragment, t.gt, t.count


def agglomeration_curve(tables: str, truth, scoring: str) -> dict[float, dict]:
    """Figures of the part at each merge threshold, agglomerated with ``scoring``."""
    from pipeline.stages.learned_model import scores_at

    return scores_at(tables, truth, scoring, thresholds())


def multicut_curve(tables: str, truth, betas: tuple[float, ...]) -> dict[float, dict]:
    """elf's multicut (GAEC, bioimage-cpp backend) on the part's region graph: edge costs from
    each edge's mean boundary value (1 - mean affinity across the contact) through
    ``transform_probabilities_to_costs`` weighted by contact area, one curve point per beta."""
    import bioimage_cpp as bic
    import elf.segmentation.multicut as em

    from pipeline.correct.truth import FragmentTruth
    from pipeline.lut import Lut
    from pipeline.stages.learned_model import _graph

    edges, _, ids = _graph(tables)
    uv = np.stack([edges["u"], edges["v"]], axis=1).astype(np.uint64)
    graph = bic.graph.UndirectedGraph.from_edges(len(ids), uv)
    probs = np.clip(edges["sum"] / np.maximum(edges["count"], 1), 1e-4, 1 - 1e-4)
    ft = FragmentTruth(*truth)
    out = {}
    for beta in betas:
        if len(probs) == 0:  # one fragment per node, nothing to cut
            labels = np.arange(len(ids), dtype=np.uint64)
        else:
            costs = em.transform_probabilities_to_costs(probs, beta, edge_sizes=edges["count"])
            labels = np.asarray(em.multicut_gaec(graph, costs), np.uint64)
        out[float(beta)] = ft.scores(Lut.from_arrays(ids, labels + 1))
    return out


def waterz_curve(pred_url: str, gt_url: str) -> dict[float, dict]:
    """waterz 0.10.1 with its precompiled default scoring (1 - mean affinity) and its own
    zwatershed fragments on the nearest-neighbour channels, cut at each threshold."""
    import waterz

    from benchmarks.accuracy_data import read_part
    from benchmarks.inputs import quiet_fd
    from pipeline.evaluate import evaluate_arrays

    pred, gt = read_part(pred_url), read_part(gt_url)
    affs = np.ascontiguousarray(pred[:3], np.float32) / (255.0 if pred.dtype == np.uint8 else 1)
    grid = thresholds()
    out = {}
    with quiet_fd():
        for t, seg in zip(grid, waterz.agglomerate(affs, list(grid)), strict=True):
            out[float(t)] = evaluate_arrays(seg, gt)
    return out
