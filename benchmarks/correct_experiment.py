"""Train-on-one-part, evaluate-on-another harness for the correct stage on labelled volumes
(used by ``petaseg correct-train``, the real-data tests and ``bench_correct``).

A part is a labelled sub-volume turned into what the correct stage sees in production: Zarr raw,
fragments and boundary map, the region graph, merge scores and lookup tables of the segmentation
stages (issue 5's ``run_graph``/``run_agglomerate``/``run_segment``), and the feature tables.
Ground truth only ever enters as a fragment x neuron contingency table: for labels when training,
for VI and precision when evaluating. A model is trained on some parts and evaluated on others;
thresholds are chosen on the training parts only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.correct.apply import pair_truth, split_truth
from pipeline.correct.classifier import ErrorModel, precision_at
from pipeline.correct.features import run_features
from pipeline.correct.tables import Tables
from pipeline.correct.train import Labelled, detect, label, train_model
from pipeline.correct.truth import FragmentTruth
from pipeline.io.volume import create_volume
from pipeline.lut import Lut, load_lut


def boundary_from_raw(raw: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """A stand-in boundary map where no trained model is at hand: EM membranes are dark, so
    ``clip((p99 - gauss(raw)) / (p99 - p1), 0, 1)`` (the segmentation benchmark's stand-in)."""
    from scipy import ndimage

    g = ndimage.gaussian_filter(np.asarray(raw, np.float32), sigma)
    lo, hi = np.percentile(g, [1, 99])
    return np.clip((hi - g) / max(hi - lo, 1e-6), 0, 1).astype(np.float32)


@dataclass
class Part:
    name: str
    root: str  # tables root
    fragments_url: str
    raw_url: str
    boundary_url: str
    truth: FragmentTruth
    thresholds: list[float]

    def lut(self, threshold: float) -> Lut:
        from pipeline.io.tables import lut_root

        return load_lut(lut_root(self.root, threshold))

    def tables(self) -> Tables:
        return Tables.read(self.root)


def _write(url: str, data: np.ndarray, voxel_size, chunks=(64, 64, 64)) -> str:
    vol = create_volume(url, data.shape, data.dtype, voxel_size, chunks=chunks, exist_ok=True)
    vol.write(vol.roi, data)
    return url


def prepare_part(
    out: str | Path,
    name: str,
    raw: np.ndarray,
    fragments: np.ndarray,
    gt: np.ndarray,
    boundary: np.ndarray | None = None,
    voxel_size: Sequence[int] = (10, 10, 10),
    thresholds: Sequence[float] = (0.6, 0.65, 0.7, 0.75),
    client=None,
    progress: bool = False,
) -> Part:
    """Write one labelled part and run the segmentation stages and the feature pass on it."""
    from pipeline.stages.agglomerate import run_agglomerate
    from pipeline.stages.graph import run_graph
    from pipeline.stages.segment import run_segment

    out = Path(out)
    base = out / f"{name}.zarr"
    boundary = boundary_from_raw(raw) if boundary is None else boundary
    raw_url = _write(str(base / "raw"), np.ascontiguousarray(raw), voxel_size)
    frag_url = _write(
        str(base / "fragments"), np.ascontiguousarray(fragments, np.uint64), voxel_size
    )
    bnd_url = _write(str(base / "boundary"), np.ascontiguousarray(boundary, np.float32), voxel_size)
    root = str(out / f"{name}.tables")
    run_graph(frag_url, bnd_url, root, client=client, progress=progress)
    run_agglomerate(root, "mean", client=client, progress=progress)
    run_segment(root, list(thresholds))
    run_features(frag_url, raw_url, bnd_url, root, client=client, progress=progress)
    truth = FragmentTruth.from_arrays(np.asarray(fragments, np.uint64), gt)
    return Part(name, root, frag_url, raw_url, bnd_url, truth, list(thresholds))


def best_threshold(part: Part) -> tuple[float, dict[str, float]]:
    """The segmentation threshold with the lowest VI on ``part`` (use on training parts only)."""
    scored = [(t, part.truth.scores(part.lut(t))) for t in part.thresholds]
    return min(scored, key=lambda ts: ts[1]["vi_sum"])


def train(parts: Sequence[Part], thresholds: Sequence[float] | None = None) -> ErrorModel:
    """A model from the segmentations of ``parts`` at ``thresholds`` (default: all of each
    part's), so it sees under- and over-merged segmentations."""
    data: list[Labelled] = []
    for p in parts:
        tables = p.tables()
        for t in thresholds or p.thresholds:
            data.append(label(tables, p.lut(t), p.truth))
    info = {"parts": [p.name for p in parts], "thresholds": list(thresholds or [])}
    return train_model(data, info)


def evaluate(
    model: ErrorModel,
    part: Part,
    lut: Lut,
    log_path: str,
    candidates_json: str,
    k: int = 10,
    client=None,
) -> dict[str, Any]:
    """Run the correct stage on ``lut`` over ``part`` and score it against ground truth: VI
    before/after (the edit log's head), and precision at ``k`` of the ranked list it wrote."""
    import json

    from pipeline.proofread.editlog import EditLog
    from pipeline.stages.correct import run_correct

    summary = run_correct(
        part.root,
        part.fragments_url,
        part.raw_url,
        part.boundary_url,
        model,
        log_path,
        candidates_json,
        lut=lut,
        client=client,
        progress=False,
    )
    with EditLog(log_path) as log:
        before, after = log.lut(summary["version_before"]), log.lut(summary["version_after"])
    tables = part.tables()
    # the ranked list describes the corrected segmentation: label its candidates there
    pairs, splits = detect(tables, after)
    truth_of = {
        ("split_error", (int(a), int(b))): int(y)
        for a, b, y in zip(pairs.a, pairs.b, pair_truth(part.truth, after, pairs), strict=True)
    }
    truth_of.update(
        {
            ("merge_error", (int(s),)): int(y)
            for s, y in zip(splits.segment, split_truth(part.truth, splits), strict=True)
        }
    )
    ranked = json.loads(Path(candidates_json).read_text())["candidates"]
    labels = np.array([truth_of[(c["error"], tuple(c["segments"]))] for c in ranked])
    scores = np.array([c["score"] for c in ranked])
    # and, for reference, every candidate of the uncorrected segmentation
    pairs0, splits0 = detect(tables, before)
    all_labels = np.concatenate(
        [pair_truth(part.truth, before, pairs0), split_truth(part.truth, splits0)]
    )
    all_scores = np.concatenate(
        [model.predict("pair", pairs0.features), model.predict("split", splits0.features)]
    )
    vb, va = part.truth.scores(before), part.truth.scores(after)
    return {
        "vi_before": vb["vi_sum"],
        "vi_after": va["vi_sum"],
        "vi_split_before": vb["vi_split"],
        "vi_split_after": va["vi_split"],
        "vi_merge_before": vb["vi_merge"],
        "vi_merge_after": va["vi_merge"],
        "arand_before": vb["adapted_rand"],
        "arand_after": va["adapted_rand"],
        f"precision_at_{k}": precision_at(scores, labels, k),
        f"precision_at_{k}_all_candidates": precision_at(all_scores, all_labels, k),
        "true_error_rate": float(labels.mean()) if len(labels) else float("nan"),
        "ranked": len(ranked),
        "applied": summary["applied"],
        "thresholds": summary["thresholds"],
    }
