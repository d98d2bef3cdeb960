"""Run a workflow: predict -> fragments -> graph -> agglomerate -> segment -> correct -> relabel
-> evaluate -> export, each stage skipped when it already finished with the same parameters and
inputs.

A stage's completion record (``<output>.done/workflow/<stage>.json``) holds a hash of its
configuration chained with the hashes of the stages before it, so changing a parameter reruns that
stage and everything after it; the blockwise stages additionally resume block by block.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, InputError
from pipeline.io.fs import filesystem
from pipeline.provenance import package_version
from pipeline.runner.done import markers_root, params_hash
from workflows.schema import Workflow


class StageLog:
    """Completion records of whole stages, and the timing of each."""

    def __init__(self, output: str, plan: list[str] | None = None):
        self.plan = plan or []
        self.url = f"{markers_root(output.rstrip('/') + '/x').rsplit('/', 1)[0]}/workflow"
        self.fs, self.path = filesystem(self.url)
        self.times: dict[str, dict[str, Any]] = {}
        self.chain = ""

    def run(self, name: str, config: Any, fn: Callable[[], dict[str, Any]], progress: bool) -> dict:
        self.chain = params_hash({"stage": name, "config": config, "upstream": self.chain})
        record = f"{self.path}/{name}.json"
        if self.fs.exists(record):
            with self.fs.open(record) as f:
                saved = json.load(f)
            if saved.get("hash") == self.chain:
                if progress:
                    print(f"{name}: already done, skipped", file=sys.stderr)
                self.times[name] = {"seconds": 0.0, "skipped": True, **saved.get("timing", {})}
                return saved["result"]
        if progress:
            n = len(self.plan)
            at = f"[{self.plan.index(name) + 1}/{n}] " if name in self.plan else ""
            print(f"{at}{name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        result = fn()
        secs = time.perf_counter() - t0
        timing = {"seconds": round(secs, 3)}
        if "voxels" in result:
            timing["voxels_per_s"] = round(result["voxels"] / secs, 1) if secs else 0.0
        self.times[name] = {**timing, "skipped": False}
        self.fs.makedirs(self.path, exist_ok=True)
        with self.fs.open(record, "w") as f:
            json.dump({"hash": self.chain, "result": result, "timing": timing}, f, default=str)
        return result


def plan_of(wf: Workflow) -> list[str]:
    """The stages ``wf`` runs, in order (for the progress view: stage i of n)."""
    st = wf.stages
    plan = ["input"]
    plan += ["predict"] if wf.input.boundaries is None else []
    plan += ["fragments", "graph", "agglomerate", "segment"]
    plan += ["correct"] if st.correct.enabled else []
    plan += ["relabel"]
    plan += ["evaluate"] if wf.input.ground_truth or wf.input.synthetic else []
    plan += ["export"] if st.export.enabled else []
    return plan


def check_input(wf: Workflow) -> None:
    """Open every given input now, so a missing path or a ground truth of another shape is
    refused before hours of prediction, not at the evaluation after them."""
    from pipeline.io.volume import open_volume

    given = {k: getattr(wf.input, k) for k in ("raw", "boundaries", "ground_truth")}
    vols = {k: open_volume(v) for k, v in given.items() if v}
    shapes = {k: tuple(v.shape) for k, v in vols.items()}
    if len(set(shapes.values())) > 1:
        raise InputError(
            "the workflow's inputs have different shapes: "
            + ", ".join(f"input.{k} {given[k]} {s}" for k, s in shapes.items())
            + "; give volumes of one grid"
        )


def _voxels(url: str) -> int:
    from pipeline.io.volume import open_volume

    vol = open_volume(url)
    return int(vol.shape[0]) * int(vol.shape[1]) * int(vol.shape[2])


def correction_model(name_or_path: str) -> str:
    """A shipped correction model's file (``models/zoo/<name>.parquet``) or the given file."""
    from models.zoo import ZOO

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
    import shutil

    from pipeline.proofread.editlog import EditLog
    from pipeline.proofread.store import versions_folder
    from pipeline.stages.correct import AUTHOR

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


def require_gpu_workers(client) -> None:
    """``cluster.require_gpu``: refuse at once rather than queue inference that never starts."""
    from pipeline.errors import ClusterError

    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    if not any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers.values()):
        raise ClusterError(
            f"the workflow sets cluster.require_gpu, but none of the {len(workers)} worker(s) "
            "advertises a GPU: start workers with `dask worker ... --resources GPU=1` (SLURM and "
            "Kubernetes specs in cluster/ do this), or set cluster.require_gpu: false to run on CPU"
        )


def run_workflow(wf: Workflow, client, progress: bool = True) -> dict[str, Any]:
    """Run every stage of ``wf`` on ``client``; return a summary (stage times, outputs, metrics)."""
    from pipeline.evaluate import evaluate_volumes
    from pipeline.io.tables import tables_root
    from pipeline.seg.watershed import FragmentParams
    from pipeline.stages.agglomerate import run_agglomerate
    from pipeline.stages.fragments import run_fragments
    from pipeline.stages.graph import run_graph
    from pipeline.stages.relabel import run_relabel
    from pipeline.stages.segment import output_for, run_segment

    out = wf.output.rstrip("/")
    st = wf.stages
    log = StageLog(out, plan_of(wf))
    urls: dict[str, Any] = {}
    error_model = correction_model(st.correct.model) if st.correct.enabled else None

    def stage_input() -> dict[str, Any]:
        if wf.input.synthetic is not None:
            from pipeline.synthetic.volume import make_volume

            s = wf.input.synthetic
            vol = make_volume(tuple(s.shape), seed=s.seed, anisotropy=s.anisotropy)
            written = vol.write_zarr(f"{out}/input", exist_ok=True)
            return {
                "raw": written["raw"],
                "ground_truth": written["labels"],
                "voxels": vol.raw.size,
            }
        src = wf.input.raw or wf.input.boundaries
        check_input(wf)
        return {
            "raw": wf.input.raw,
            "boundaries": wf.input.boundaries,
            "ground_truth": wf.input.ground_truth,
            "voxels": _voxels(src),
        }

    urls.update(log.run("input", wf.input.model_dump(), stage_input, progress))
    if wf.input.ground_truth:
        urls["ground_truth"] = wf.input.ground_truth

    if urls.get("boundaries") is None:
        if not st.predict.enabled:
            raise InputError("stages.predict.enabled is false but the input has no boundaries")
        from pipeline.stages.predict import predict

        if wf.cluster.require_gpu:
            require_gpu_workers(client)

        def stage_predict() -> dict[str, Any]:
            target = f"{out}/boundaries"
            r = predict(
                wf.model,
                urls["raw"],
                target,
                block=st.predict.block,
                patch=st.predict.patch,
                overlap=st.predict.overlap,
                tta=st.predict.tta,
                dtype=st.predict.dtype,
                batch_size=st.predict.batch_size,
                chunks=st.predict.chunks,
                client=client,
                progress=progress,
            )
            return {"boundaries": target, "voxels": _voxels(target), "blocks": r.blocks_total}

        urls.update(
            log.run(
                "predict", {"model": wf.model, **st.predict.model_dump()}, stage_predict, progress
            )
        )

    seg_url = f"{out}/segmentation"
    fragments_url = f"{out}/fragments"
    tables = tables_root(seg_url)
    fparams = FragmentParams(**st.fragments.model_dump(exclude={"block", "context"}))

    def stage_fragments() -> dict[str, Any]:
        r = run_fragments(
            urls["boundaries"],
            fragments_url,
            fparams,
            st.fragments.block,
            st.fragments.context,
            client,
            progress,
        )
        return {
            "fragments": fragments_url,
            "voxels": _voxels(fragments_url),
            "blocks": r.blocks_total,
        }

    urls.update(log.run("fragments", st.fragments.model_dump(), stage_fragments, progress))

    def stage_graph() -> dict[str, Any]:
        r = run_graph(
            fragments_url,
            urls["boundaries"],
            tables,
            st.graph.bins,
            client=client,
            progress=progress,
        )
        return {"tables": tables, "voxels": _voxels(fragments_url), "blocks": r.blocks_total}

    urls.update(log.run("graph", st.graph.model_dump(), stage_graph, progress))

    def stage_agglomerate() -> dict[str, Any]:
        info = run_agglomerate(
            tables,
            st.agglomerate.scoring,
            st.agglomerate.max_global_edges,
            st.agglomerate.local_threshold,
            client,
            progress,
        )
        return {"agglomeration": info, "voxels": _voxels(fragments_url)}

    log.run("agglomerate", st.agglomerate.model_dump(), stage_agglomerate, progress)

    def stage_segment() -> dict[str, Any]:
        return {"luts": run_segment(tables, st.segment.thresholds)}

    luts = log.run("segment", st.segment.model_dump(), stage_segment, progress)["luts"]

    corrected = None
    if st.correct.enabled:
        from pipeline.stages.correct import run_correct

        pick = st.correct.threshold if st.correct.threshold is not None else luts[0]["threshold"]
        chosen = next(i for i in luts if i["threshold"] == pick)
        edit_log = Path(st.correct.edit_log or f"{out}.edits/edit_log.sqlite")

        def stage_correct() -> dict[str, Any]:
            from pipeline.proofread.editlog import EditLog

            fresh_edit_log(edit_log)
            th = {
                k: v
                for k, v in (
                    ("pair", st.correct.merge_threshold),
                    ("split", st.correct.split_threshold),
                )
                if v is not None
            }
            candidates = str(edit_log.parent / "candidates.json")
            report = run_correct(
                tables,
                fragments_url,
                urls["raw"],
                urls["boundaries"],
                error_model,
                str(edit_log),
                candidates,
                lut=chosen["lut"],
                thresholds=th,
                max_candidates=st.correct.max_candidates,
                client=client,
                progress=progress,
            )
            lut_url = f"{tables}/luts/corrected"
            with EditLog(edit_log) as elog:
                info = elog.export(lut_url, report["version_after"])
            return {
                "threshold": pick,
                "lut": lut_url,
                "segments": info["segments"],
                "edit_log": str(edit_log),
                "candidates": candidates,
                "applied": report["applied"],
                "ranked": report["ranked"],
                "version_after": report["version_after"],
                "voxels": _voxels(fragments_url),
            }

        corrected = log.run(
            "correct",
            {"model": error_model, **st.correct.model_dump(exclude={"model"})},
            stage_correct,
            progress,
        )
        urls["edit_log"] = corrected["edit_log"]
        urls["candidates"] = corrected["candidates"]

    def stage_relabel() -> dict[str, Any]:
        several = len(luts) > 1
        outputs = []
        jobs = [(output_for(seg_url, i["threshold"], several), i, False) for i in luts]
        if corrected is not None:
            jobs.append((f"{seg_url}_corrected", corrected, True))
        for target, info, is_corrected in jobs:
            run_relabel(fragments_url, info["lut"], target, client, progress)
            outputs.append(
                {
                    "threshold": info["threshold"],
                    "corrected": is_corrected,
                    "segmentation": target,
                    "segments": info.get("segments"),
                }
            )
        return {"segmentations": outputs, "voxels": _voxels(fragments_url) * len(outputs)}

    relabelled = log.run(
        "relabel",
        {"luts": [i["lut"] for i in luts], "corrected": corrected},
        stage_relabel,
        progress,
    )
    urls["segmentations"] = relabelled["segmentations"]
    # what proofreading starts from: the corrected segmentation, else the first threshold's
    final = next((s for s in urls["segmentations"] if s["corrected"]), urls["segmentations"][0])
    urls["final_segmentation"] = final["segmentation"]

    metrics: list[dict[str, Any]] = []
    if urls.get("ground_truth"):

        def stage_evaluate() -> dict[str, Any]:
            return {
                "metrics": [
                    {
                        "threshold": s["threshold"],
                        "corrected": s["corrected"],
                        **evaluate_volumes(s["segmentation"], urls["ground_truth"]),
                    }
                    for s in urls["segmentations"]
                ]
            }

        metrics = log.run(
            "evaluate",
            {"gt": urls["ground_truth"], "segmentations": urls["segmentations"]},
            stage_evaluate,
            progress,
        )["metrics"]

    if st.export.enabled:
        from pipeline.export.objects import ObjectParams
        from pipeline.export.precomputed import export

        target = st.export.path or f"{out[: -len('.zarr')]}.neuroglancer"

        def stage_export() -> dict[str, Any]:
            res = export(
                target,
                image_url=urls.get("raw"),
                segmentation_url=final["segmentation"],
                candidates=urls.get("candidates") if "://" not in target else None,
                levels=st.export.levels,
                objects=ObjectParams(
                    meshes=st.export.meshes,
                    skeletons=st.export.skeletons,
                    min_size=st.export.min_size,
                ),
                client=client,
                progress=progress,
            )
            return {
                "neuroglancer": target,
                "viewer_state": f"{target}/viewer_state.json",
                "viewer_url": res.url,
                "voxels": _voxels(final["segmentation"]),
            }

        urls.update(
            log.run(
                "export",
                {**st.export.model_dump(), "segmentation": final["segmentation"]},
                stage_export,
                progress,
            )
        )

    summary = {
        "workflow": wf.name,
        "output": out,
        "petaseg_version": package_version(),
        "stages": log.times,
        "outputs": {k: v for k, v in urls.items() if k != "voxels"},
        "metrics": metrics,
        "correction": corrected,
    }
    summary_path = Path(out).parent / f"{Path(out).stem}.summary.json" if "://" not in out else None
    if summary_path is not None:
        summary_path.write_text(json.dumps(summary, indent=1, default=str))
        summary["summary_file"] = str(summary_path)
    return summary
