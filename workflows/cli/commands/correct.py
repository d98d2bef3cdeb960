"""``petaseg correct`` (detect, auto-correct and rank errors) and ``petaseg correct-train``
(fit the error classifiers on a labelled, segmented volume)."""

from __future__ import annotations

from typing import Annotated

import typer

from workflows.cli.options import (
    AsJson,
    Boundaries,
    Cluster,
    Fragments,
    Lut,
    RawImage,
    Tables,
    client_for,
    print_json,
)

# what correct reads and writes besides the segmentation
ErrorModel = Annotated[str, typer.Option(help="model file from `petaseg correct-train`")]
LogFile = Annotated[str, typer.Option(help="edit log (created from --lut if it does not exist)")]
Candidates = Annotated[str, typer.Option(help="ranked candidates JSON to write")]
MergeThreshold = Annotated[float | None, typer.Option(help="override the model's pair threshold")]
SplitThreshold = Annotated[float | None, typer.Option(help="override the model's split threshold")]


def correct(
    tables: Tables,
    fragments: Fragments,
    raw: RawImage,
    boundaries: Boundaries,
    model: ErrorModel,
    log: LogFile,
    out: Candidates,
    lut: Lut = None,
    merge_threshold: MergeThreshold = None,
    split_threshold: SplitThreshold = None,
    cluster: Cluster = None,
    as_json: AsJson = False,
) -> None:
    """Find merge/split errors; apply the confident ones as logged edits; rank the rest."""
    from pipeline.stages.correct import run_correct

    th = {}
    if merge_threshold is not None:
        th["pair"] = merge_threshold
    if split_threshold is not None:
        th["split"] = split_threshold
    with client_for(cluster) as client:
        summary = run_correct(
            tables, fragments, raw, boundaries, model, log, out, lut, th, client=client
        )
    if as_json:
        print_json(summary)
        return
    a = summary["applied"]
    print(
        f"applied {a['splits']} split(s) and {a['merges']} merge(s): version "
        f"{summary['version_before']} -> {summary['version_after']} in {summary['edit_log']}"
    )
    print(f"{summary['ranked']} candidates for proofreading -> {out}")
    print(
        f"show them: petaseg export OUT --segmentation {fragments} --lut <exported version> --candidates {out}"
    )


def correct_train(
    tables: Tables,
    fragments: Fragments,
    raw: RawImage,
    boundaries: Boundaries,
    gt: Annotated[str, typer.Option(help="ground-truth neuron ids (0 = unlabelled)")],
    lut: Annotated[list[str], typer.Option(help="lookup table(s) to learn from (repeat)")],
    model: Annotated[str, typer.Option(help="model file to write (.parquet)")],
    cluster: Cluster = None,
    as_json: AsJson = False,
) -> None:
    """Fit the split- and merge-error classifiers and their thresholds on labelled data."""
    from pipeline.correct.features import run_features
    from pipeline.correct.tables import Tables
    from pipeline.correct.train import label, train_model
    from pipeline.correct.truth import FragmentTruth
    from pipeline.io.urls import refuse_overwriting
    from pipeline.lut import load_lut

    refuse_overwriting([model], [fragments, raw, boundaries, gt, *lut], "petaseg correct-train")
    with client_for(cluster) as client:
        run_features(fragments, raw, boundaries, tables, client=client)
    t = Tables.read(tables)
    truth = FragmentTruth.from_volumes(fragments, gt)
    data = [label(t, load_lut(u), truth) for u in lut]
    m = train_model(data, {"tables": tables, "luts": lut, "gt": gt})
    m.save(model)
    if as_json:
        print_json({"model": model, "thresholds": m.thresholds, **m.info})
        return
    print(f"model -> {model}; thresholds {m.thresholds}")
    print(
        f"training VI {m.info['train_vi_before']:.3f} -> "
        f"{m.info['train_vi_after_held_out']:.3f} (held-out slabs)"
    )
