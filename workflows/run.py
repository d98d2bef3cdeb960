"""Run a workflow: predict -> fragments -> graph -> agglomerate -> segment -> relabel -> evaluate
(correct and export join when configured), each stage skipped when it already finished with the
same parameters and inputs.

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

from pipeline.backends.fs import filesystem
from pipeline.done_markers import markers_root, params_hash
from pipeline.errors import InputError
from pipeline.provenance import package_version

from .schema import Workflow


class StageLog:
    """Completion records of whole stages, and the timing of each."""

    def __init__(self, output: str):
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


def _voxels(url: str) -> int:
    from pipeline.volume import open_volume

    vol = open_volume(url)
    return int(vol.shape[0]) * int(vol.shape[1]) * int(vol.shape[2])


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
    from pipeline.seg.tables import tables_root
    from pipeline.seg.watershed import FragmentParams
    from pipeline.stages.agglomerate import run_agglomerate
    from pipeline.stages.fragments import run_fragments
    from pipeline.stages.graph import run_graph
    from pipeline.stages.relabel import run_relabel
    from pipeline.stages.segment import output_for, run_segment

    out = wf.output.rstrip("/")
    log = StageLog(out)
    st = wf.stages
    urls: dict[str, Any] = {}

    def stage_input() -> dict[str, Any]:
        if wf.input.synthetic is not None:
            from pipeline.synthetic import make_volume

            s = wf.input.synthetic
            vol = make_volume(tuple(s.shape), seed=s.seed, anisotropy=s.anisotropy)
            written = vol.write_zarr(f"{out}/input", exist_ok=True)
            return {
                "raw": written["raw"],
                "ground_truth": written["labels"],
                "voxels": vol.raw.size,
            }
        src = wf.input.raw or wf.input.boundaries
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

    def stage_relabel() -> dict[str, Any]:
        several = len(luts) > 1
        outputs = []
        for info in luts:
            target = output_for(seg_url, info["threshold"], several)
            run_relabel(fragments_url, info["lut"], target, client, progress)
            outputs.append(
                {
                    "threshold": info["threshold"],
                    "segmentation": target,
                    "segments": info.get("segments"),
                }
            )
        return {"segmentations": outputs, "voxels": _voxels(fragments_url) * len(outputs)}

    relabelled = log.run("relabel", {"luts": [i["lut"] for i in luts]}, stage_relabel, progress)
    urls["segmentations"] = relabelled["segmentations"]

    metrics: list[dict[str, Any]] = []
    if urls.get("ground_truth"):

        def stage_evaluate() -> dict[str, Any]:
            return {
                "metrics": [
                    {
                        "threshold": s["threshold"],
                        **evaluate_volumes(s["segmentation"], urls["ground_truth"]),
                    }
                    for s in urls["segmentations"]
                ]
            }

        metrics = log.run("evaluate", {"gt": urls["ground_truth"]}, stage_evaluate, progress)[
            "metrics"
        ]

    summary = {
        "workflow": wf.name,
        "output": out,
        "petaseg_version": package_version(),
        "stages": log.times,
        "outputs": {k: v for k, v in urls.items() if k != "voxels"},
        "metrics": metrics,
    }
    summary_path = Path(out).parent / f"{Path(out).stem}.summary.json" if "://" not in out else None
    if summary_path is not None:
        summary_path.write_text(json.dumps(summary, indent=1, default=str))
        summary["summary_file"] = str(summary_path)
    return summary
