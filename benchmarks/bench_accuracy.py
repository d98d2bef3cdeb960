"""Accuracy on data no setting was chosen on: four petaseg configs and two peers on the same
affinities, on FIB z 130-159 and on gala by two-fold cross-validation.

Configs: ``boundary-v1+mean`` (the boundary model, watershed fragments, mean agglomeration),
``affinity-v2+mean``, ``affinity-v2+learned`` (``scoring: learned:<edge model>``) and
``affinity-v2+mutex`` (mutex-watershed fragments, ``bias_long`` in ``BIASES``, then the region
graph and mean agglomeration across block faces). Fragments and blocks are those of
``workflows/examples/fib_medulla.yaml``; predictions are uint8, overlap 0 (cached). Peers on the
affinity model's prediction: ``waterz`` (0.10.1, precompiled default scoring, its own
fragments, threshold swept) and ``elf_multicut`` (python-elf 0.9.2, bioimage-cpp GAEC on
petaseg's affinity region graph, costs from the mean boundary, beta swept).

Every setting (watershed fragments threshold in ``FRAGMENT_THRESHOLDS`` and merge threshold;
mutex bias and threshold; multicut beta) is chosen by
``pipeline.evaluate.choice`` without the data it is scored on. FIB: chosen on z 0-99 (pooled
voxel-weighted over z 0-49 and z 50-99, segmented separately), scored on z 130-159; both
models were trained on z 0-129, so the choice set was seen by the networks, never the scored
set. The learned and multicut configs use the graphs of the fragments threshold chosen for
``affinity-v2+mean`` on FIB z 0-99 (on gala too). gala: chosen on one x-half, scored on the other, both folds and their mean. ``oracle_*``:
the best setting of the scored part itself, for reference only.

Edge model of the learned config: ``PETASEG_BENCH_ACCURACY_EDGE`` (a zoo name or .parquet), or
by default trained here on the affinity model's region graphs of FIB z 0-49 and z 50-99 only
(threshold cross-validated between them; cached). ``infer_vps``: voxels/s of the model's
prediction of the whole FIB volume (one thread, overlap 0, measured when first cached);
``flops_per_voxel``: ``torch.utils.flop_counter`` forward FLOPs per output voxel of a 64^3 patch.

Env: ``PETASEG_BENCH_ACCURACY_BOUNDARY`` / ``_AFFINITY`` (models, default fib-boundary-v1 /
fib-affinity-v2), ``_EDGE``, ``_FRAGMENT_THRESHOLDS``, ``_YX`` (crop y, x for tests), ``_THRESHOLDS``, ``_BIASES``,
``_BETAS`` (comma lists), ``_CACHE``, ``_PNG`` (VI sum against setting per config), and
``_WORKFLOW`` (a ``petaseg run`` summary JSON of fib_medulla.yaml: its segmentations scored on z
130-159 and whole; with ``_ONLY=workflow`` nothing else).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks.accuracy_curves import (
    BETAS,
    BIASES,
    agglomeration_curve,
    floats,
    fragment_thresholds,
    multicut_curve,
    segment_part,
    truth_of,
    waterz_curve,
)
from benchmarks.accuracy_data import SOURCES, cache_root, model_tag, note, part_urls, prediction
from benchmarks.accuracy_report import model_figures, plot_curves, score_volume, workflow_figures
from pipeline.evaluate.choice import choose

FALLBACK_EDGE = "fib-edge-v1"
PNG = Path(__file__).resolve().parent / "results" / "accuracy_curves.png"
CHOSEN_ON = {
    "fib": "lowest pooled VI sum on z 0-49 and z 50-99 (models trained on z 0-129); scored on "
    "z 130-159",
    "gala": "two-fold cross-validation: lowest VI sum on one x-half, scored on the other",
}


def models() -> dict[str, str]:
    from models.zoo import model_path
    from pipeline.errors import InputError

    out = {
        "boundary": os.environ.get("PETASEG_BENCH_ACCURACY_BOUNDARY", "fib-boundary-v1"),
        "affinity": os.environ.get("PETASEG_BENCH_ACCURACY_AFFINITY", "fib-affinity-v2"),
    }
    for kind, name in out.items():
        try:
            model_path(name)
        except Exception:
            raise InputError(
                f"{kind} model {name!r} is neither shipped nor a file: set "
                f"PETASEG_BENCH_ACCURACY_{kind.upper()} to a checkpoint (.pt)"
            ) from None
    return out


def volume_curves(model: str, volume: str, client, with_mutex: bool) -> dict:
    """Per part: the watershed graphs (tables, truth) per fragments threshold, the mean curve
    (keys (fragments threshold, threshold)) and with ``with_mutex`` the mutex curves (keys
    (bias, threshold))."""
    out = {}
    for part, (pred, gt) in part_urls(model, volume).items():
        note(f"segmenting {volume} {part} with {model}")
        root = cache_root() / model_tag(model) / f"{volume}-{part}-seg"
        rec: dict = {"pred": pred, "gt": gt, "ws": {}, "mean": {}}
        for ft in fragment_thresholds():
            frag, tables = segment_part(pred, root, client, threshold=ft)
            truth = truth_of(frag, gt)
            rec["ws"][ft] = (tables, truth, frag)
            curve = agglomeration_curve(tables, truth, "mean")
            rec["mean"].update({(ft, t): s for t, s in curve.items()})
        if with_mutex:
            rec["mutex"] = {}
            for bias in floats("PETASEG_BENCH_ACCURACY_BIASES", BIASES):
                mfrag, mtables = segment_part(pred, root, client, bias)
                mcurve = agglomeration_curve(mtables, truth_of(mfrag, gt), "mean")
                rec["mutex"].update({(bias, t): s for t, s in mcurve.items()})
        out[part] = rec
    return out


def use_fragments(per_volume: dict) -> float:
    """The fragments threshold of the learned and multicut configs: the one of the lowest
    mean-agglomeration VI sum on FIB z 0-99 (never on a scored part); its graphs become each
    part's ``tables``/``truth``."""
    fib = per_volume["fib"]
    ft = choose([fib["train_a"]["mean"], fib["train_b"]["mean"]])[0]
    for parts in per_volume.values():
        for rec in parts.values():
            rec["tables"], rec["truth"], rec["fragments"] = rec["ws"][ft]
    return ft


def edge_model(affinity: str, fib: dict) -> tuple[str, dict | None, str]:
    """The learned config's edge model, its cross-validated choice curve on z 0-99 (None when
    given from outside) and how it came about."""
    from threadpoolctl import threadpool_limits

    from pipeline.stages.learned_model import load_edge_model, save_edge_model, train_edge_model

    given = os.environ.get("PETASEG_BENCH_ACCURACY_EDGE")
    if given:
        return given, None, f"given: {given}"
    ft = fib["train_a"]["fragments_threshold"]
    path = cache_root() / model_tag(affinity) / f"fib-edge-z0-99-ws{ft}.parquet"
    if not path.exists():
        note("training the edge classifier on the affinity graphs of FIB z 0-49 and 50-99")
        graphs = [(fib[p]["tables"], fib[p]["truth"]) for p in ("train_a", "train_b")]
        path.parent.mkdir(parents=True, exist_ok=True)
        info = {"data": "fib_medulla_train z 0-49 and 50-99", "affinities": affinity}
        try:
            with threadpool_limits(1):
                save_edge_model(train_edge_model(graphs, info=info), str(path))
        except ValueError as e:  # e.g. a graph without both kinds of edges
            return FALLBACK_EDGE, None, f"{FALLBACK_EDGE} (training on z 0-99 failed: {e})"
    curve = load_edge_model(str(path)).info["threshold_curve"]
    how = "trained in the bench on the affinity model's region graphs of FIB z 0-49 and 50-99"
    return str(path), {float(t): c for t, c in curve.items()}, how


def edge_recipe(affinity: str, fib: dict) -> str:
    """The command that trains the learned config's edge model from this bench's cached
    z 0-49 and z 50-99 graphs of ``affinity`` (what the bench trains; e.g. fib-edge-v2)."""
    args = ["petaseg train agglomeration"]
    for part in ("train_a", "train_b"):
        args += [
            f"--tables {fib[part]['tables']}",
            f"--fragments {fib[part]['fragments']}",
            f"--labels {cache_root() / 'gt' / f'fib-{part}.zarr' / 'neuron_ids'}",
        ]
    return " ".join([*args, "--out models/zoo/fib-edge-v2.parquet"])


def config_curves(m: dict[str, str], client) -> tuple[dict, dict]:
    """curves[config][volume][part] for the four configs and the two peers."""
    curves: dict = {}
    bnd = {v: volume_curves(m["boundary"], v, client, False) for v in SOURCES}
    aff = {v: volume_curves(m["affinity"], v, client, True) for v in SOURCES}
    ft = use_fragments(aff)
    for part in aff["fib"].values():
        part["fragments_threshold"] = ft
    edge, cv_curve, how = edge_model(m["affinity"], aff["fib"])
    recipe = edge_recipe(m["affinity"], aff["fib"])
    curves["boundary-v1+mean"] = {v: {p: r["mean"] for p, r in bnd[v].items()} for v in bnd}
    curves["affinity-v2+mean"] = {v: {p: r["mean"] for p, r in aff[v].items()} for v in aff}
    curves["affinity-v2+mutex"] = {v: {p: r["mutex"] for p, r in aff[v].items()} for v in aff}
    curves["affinity-v2+learned"] = {
        v: {
            p: agglomeration_curve(r["tables"], r["truth"], f"learned:{edge}")
            for p, r in aff[v].items()
        }
        for v in aff
    }
    if cv_curve is not None:  # z 0-99 curve of the models fitted on the other half
        curves["affinity-v2+learned"]["fib"]["train_cv"] = cv_curve
    betas = floats("PETASEG_BENCH_ACCURACY_BETAS", BETAS)
    note("peers: waterz and elf multicut on the affinity model's prediction")
    curves["waterz"] = {
        v: {p: waterz_curve(r["pred"], r["gt"]) for p, r in aff[v].items()} for v in aff
    }
    curves["elf_multicut"] = {
        v: {p: multicut_curve(r["tables"], r["truth"], betas) for p, r in aff[v].items()}
        for v in aff
    }
    edge_info = {"model": edge, "how": how, "fragments_threshold": ft, "recipe": recipe}
    return curves, edge_info


def scored(curves: dict) -> dict:
    """Each config and peer scored on both volumes with settings chosen without those data."""
    out = {}
    for name, per_volume in curves.items():
        out[name] = {}
        for volume, per_part in per_volume.items():
            first = "bias_long" if "mutex" in name else "fragments_threshold"
            rec = score_volume(volume, per_part, first)
            rec["setting_chosen_on"] = CHOSEN_ON[volume]
            out[name][volume] = rec
    return out


def main(json_out: bool = False) -> dict:
    from distributed import Client, LocalCluster

    for path in SOURCES.values():
        if not path.exists():
            return {"skipped": f"real data not available: {path}"}
    summary = os.environ.get("PETASEG_BENCH_ACCURACY_WORKFLOW")
    if summary and os.environ.get("PETASEG_BENCH_ACCURACY_ONLY") == "workflow":
        return {"workflow": workflow_figures(summary)}
    m = models()
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        curves, edge = config_curves(m, client)
    result: dict = {
        "models": {
            kind: model_figures(name, prediction(name, "fib")[1]) for kind, name in m.items()
        },
        "edge_model": edge,
        "setting_keys": {
            "threshold": "merge threshold (mean or learned agglomeration, waterz)",
            "[fragments_threshold, threshold]": "watershed fragments, then mean agglomeration",
            "[bias_long, threshold]": "mutex watershed (bias_short 0.5), then mean stitching",
            "beta": "elf multicut boundary bias",
        },
        "results": scored(curves),
    }
    png = Path(os.environ.get("PETASEG_BENCH_ACCURACY_PNG", PNG))
    result["png"] = str(plot_curves(curves, result["results"], png))
    result["curves_vi_sum"] = {
        n: {
            v: {p: [[k, round(s["vi_sum"], 6)] for k, s in c.items()] for p, c in pv.items()}
            for v, pv in per.items()
        }
        for n, per in curves.items()
    }
    if summary:
        result["workflow"] = workflow_figures(summary)
    return result


if __name__ == "__main__":
    print(json.dumps(main(True), default=str))
