"""The correct step: merge/split error correction of one segmentation, as logged edits, and the
ranked candidates left for proofreaders."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from models.zoo import ZOO
from pipeline.errors import ConfigError, InputError
from pipeline.proofread.editlog import EditLog
from pipeline.proofread.store import versions_folder
from pipeline.stages.correct import AUTHOR, run_correct
from workflows.schema import CorrectStage
from workflows.steps.segmentation import voxels
from workflows.steps.step import RunContext, Step


def correction_model(name_or_path: str) -> str:
    """A shipped correction model's file (``models/zoo/<name>.parquet``) or the given file."""
    if "://" in name_or_path or Path(name_or_path).is_file():
        return name_or_path
    shipped = ZOO / f"{name_or_path}.parquet"
    if shipped.is_file():
        return str(shipped)
    names = ", ".join(sorted(p.stem for p in ZOO.glob("*.parquet"))) or "none"
    raise ConfigError(
        f"stages.correct.model {name_or_path!r} is neither a shipped correction model ({names}) "
        "nor a file: train one with `petaseg correct-train`, or set stages.correct.enabled: false"
    )


def fresh_edit_log(path: Path) -> None:
    """Before correcting anew: drop an edit log that only holds automatic corrections (from an
    interrupted or outdated run); refuse to touch one a person has edited."""
    if not path.exists():
        return
    with EditLog(path) as log:
        people = sorted({e["author"] for e in log.log()} - {AUTHOR})
    if people:
        raise InputError(
            f"the edit log {path} holds edits by {', '.join(people)}; the workflow will not "
            "overwrite proofreading: move it away, or set stages.correct.edit_log to a new path"
        )
    path.unlink()
    shutil.rmtree(versions_folder(path), ignore_errors=True)


def edit_log_path(section: CorrectStage, output: str) -> Path:
    return Path(section.edit_log or f"{output}.edits/edit_log.sqlite")


def chosen_lut(section: CorrectStage, luts: list[dict[str, Any]]) -> dict[str, Any]:
    """The segmentation to correct: ``stages.correct.threshold``, else the first threshold's."""
    pick = section.threshold if section.threshold is not None else luts[0]["threshold"]
    return next(i for i in luts if i["threshold"] == pick)


def correct_step(ctx: RunContext) -> dict[str, Any]:
    section, tables = ctx.stages.correct, ctx.values["tables"]
    chosen = chosen_lut(section, ctx.values["luts"])
    edit_log, candidates = correction_outputs(ctx)
    edit_log = Path(edit_log)
    fresh_edit_log(edit_log)
    thresholds = {"pair": section.merge_threshold, "split": section.split_threshold}
    report = run_correct(
        tables,
        ctx.values["fragments"],
        ctx.values["raw"],
        ctx.values["boundaries"],
        correction_model(section.model),
        str(edit_log),
        candidates,
        lut=chosen["lut"],
        thresholds={k: v for k, v in thresholds.items() if v is not None},
        max_candidates=section.max_candidates,
        client=ctx.client,
        progress=ctx.progress,
    )
    lut_url = f"{tables}/luts/corrected"
    with EditLog(edit_log) as elog:
        info = elog.export(lut_url, report["version_after"])
    correction = {
        "threshold": chosen["threshold"],
        "lut": lut_url,
        "segments": info["segments"],
        "edit_log": str(edit_log),
        "candidates": candidates,
        "applied": report["applied"],
        "ranked": report["ranked"],
        "version_after": report["version_after"],
    }
    return {**correction, "correction": correction, "voxels": voxels(ctx.values["fragments"])}


def correction_outputs(ctx: RunContext) -> list[str]:
    """The edit log and the ranked candidates beside it."""
    edit_log = edit_log_path(ctx.stages.correct, ctx.values["output"])
    return [str(edit_log), str(edit_log.parent / "candidates.json")]


def correct_config(ctx: RunContext) -> dict[str, Any]:
    section = ctx.stages.correct
    return {"model": correction_model(section.model), **section.model_dump(exclude={"model"})}


CORRECT = Step(
    "correct",
    ("tables", "fragments", "raw", "boundaries", "luts", "output"),
    ("correction", "edit_log", "candidates"),
    correct_step,
    config=correct_config,
    writes=correction_outputs,
)
