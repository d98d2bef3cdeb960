"""``petaseg train boundary|affinity``: train a 3D network on a raw + labels volume pair (the
last ``--val-sections`` z-sections are held out for validation and never trained on; see
``workflows.training.train3d``); ``petaseg train export``: the shippable model file;
``petaseg train agglomeration``: the edge classifier of learned agglomeration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.errors import InputError

Raw = Annotated[str, typer.Option(help="raw EM volume URL, e.g. data.h5/volumes/raw")]
Labels = Annotated[str, typer.Option(help="neuron label volume URL (0 = unlabeled)")]
Checkpoint = Annotated[Path, typer.Option(help="checkpoint to write (.pt)")]
Config = Annotated[Path | None, typer.Option(help="YAML file of training options")]
Iterations = Annotated[int | None, typer.Option(help="training iterations (batches)")]
ValSections = Annotated[
    int, typer.Option(help="hold out the last N z-sections for validation (never trained on)")
]
Resume = Annotated[bool, typer.Option(help="continue the run saved at --out")]
MaxMinutes = Annotated[float | None, typer.Option(help="stop and save after this long")]
Plots = Annotated[Path | None, typer.Option(help="folder for PNGs (default: beside --out)")]
Progress = Annotated[bool, typer.Option(help="show a progress bar")]


# the command names: the training target of each, and its help
TARGETS = {
    "boundary": "Train a 3D boundary U-Net; the last --val-sections are held out.",
    "affinity": "Train a 3D affinity U-Net; the last --val-sections are held out.",
}


def train_network(
    ctx: typer.Context,
    raw: Raw,
    labels: Labels,
    out: Checkpoint,
    config: Config = None,
    iterations: Iterations = None,
    val_sections: ValSections = 30,
    resume: Resume = False,
    max_minutes: MaxMinutes = None,
    plots: Plots = None,
    progress: Progress = True,
) -> None:
    """Train a 3D U-Net on a raw + labels volume pair for the target the command names:
    ``train boundary`` a boundary map, ``train affinity`` affinities (see ``TARGETS``)."""
    from workflows.training.train3d import Train3dRun, run_training

    options = (config, iterations, val_sections, resume, max_minutes, plots, progress)
    print(json.dumps(run_training(Train3dRun(ctx.info_name, raw, labels, out, *options))))


def export(
    checkpoint: Annotated[Path, typer.Option(help="training checkpoint written by train")],
    out: Annotated[Path, typer.Option(help="model file to write (weights, config, no optimiser)")],
) -> None:
    """Strip the optimiser state from a training checkpoint: the shippable model file."""
    from models.volumetric.train import export_model

    if out.exists():
        raise InputError(f"--out {out} exists; remove it or choose another path")
    export_model(checkpoint, out)
    print(json.dumps({"out": str(out), "bytes": out.stat().st_size}))


def agglomeration(
    tables: Annotated[
        list[str], typer.Option(help="region-graph tables of a segment run (repeat)")
    ],
    fragments: Annotated[list[str], typer.Option(help="the fragments of each graph (repeat)")],
    labels: Annotated[list[str], typer.Option(help="neuron ids of each graph (repeat)")],
    out: Annotated[Path, typer.Option(help="edge model file to write (.parquet)")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Train the learned-agglomeration edge classifier on region graphs and ground truth; with
    two or more graphs its threshold is cross-validated (each graph scored by a model fitted on
    the others). Use it with ``--scoring learned:<out>``."""
    from pipeline.correct.truth import FragmentTruth
    from pipeline.io.urls import refuse_overwriting
    from pipeline.stages.learned_model import save_edge_model, train_edge_model

    if not len(tables) == len(fragments) == len(labels):
        raise InputError("give one --fragments and one --labels per --tables (in order)")
    if out.exists():
        raise InputError(f"--out {out} exists; remove it or choose another path")
    refuse_overwriting([str(out)], [*tables, *fragments, *labels], "petaseg train agglomeration")
    graphs = []
    for root, frag, gt in zip(tables, fragments, labels, strict=True):
        t = FragmentTruth.from_volumes(frag, gt)
        graphs.append((root, (t.fragment, t.gt, t.count)))
    info = {"tables": tables, "fragments": fragments, "labels": labels}
    model = train_edge_model(graphs, info=info)
    save_edge_model(model, str(out))
    best = model.info["threshold_curve"][str(model.threshold)]
    result = {"out": str(out), "threshold": model.threshold, "examples": model.info["examples"]}
    result["threshold_chosen_on"] = model.info["threshold_chosen_on"]
    result.update({f"chosen_{k}": v for k, v in best.items()})
    print(json.dumps(result) if as_json else f"edge model -> {out}: {result}")


group = typer.Typer(help="Train a boundary or affinity network.", no_args_is_help=True)
for _target, _help in TARGETS.items():
    group.command(_target, help=_help)(train_network)
group.command("export")(export)
group.command("agglomeration")(agglomeration)
