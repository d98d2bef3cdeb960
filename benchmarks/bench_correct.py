"""Error correction and export, petaseg side by side with peers, in one run.

Correction (fib_medulla_train, its shipped supervoxels as fragments, ground-truth 0 ignored):
the volume is cut into z < 100 (training) and z 100..159 (evaluation). Each part gets the
segmentation stages' region graph, agglomeration and lookup tables. The boundary map is the
shipped model's prediction when ``models/zoo/fib-boundary-v1.pt`` exists, else the stand-in
``clip((p99 - gauss(raw, 1)) / (p99 - p1), 0, 1)`` (as in bench_segmentation); both are computed
on the whole volume and cropped. Everything fitted here is fitted on the training part: the
segmentation threshold (best VI there), the classifiers and their auto-correction thresholds.
(The shipped boundary model itself was trained on z 0..129, so ``z130_*`` repeats the
evaluation on z 130..159, which neither model saw. With the model, the run is repeated with the
stand-in boundary map: ``standin_*``.) On the evaluation part:

* ``vi_before`` / ``vi_after``: VI sum of petaseg's segmentation before / after ``run_correct``
  (the edit log's first and last version), plus split/merge parts and adapted Rand.
* ``peer_vi_before`` / ``peer_vi_after``: the same for python-elf's multicut on the same
  fragments and boundary map (``compute_rag``, ``compute_boundary_features``, edge costs with
  boundary bias ``beta`` chosen on the training part, ``multicut_kernighan_lin``), corrected by
  the same model unchanged. (waterz with mean-affinity scoring on the same fragments and
  ``1 - max(b(x), b(x - e_d))`` affinities is the same algorithm as petaseg's mean agglomeration
  and gives the identical segmentation: ``waterz_vi_before`` shows it.)
* ``precision_at_10``: true errors among the 10 first candidates of the ranked list left for
  proofreaders (after auto-correction); ``true_error_rate`` is the base rate of that list.

Export throughput on one segmentation (the 160 x 250 x 250 ground-truth neuron ids), both tools
single-threaded, same work: a 3-level pyramid (labels by mode, 64^3 chunks) and simplified meshes
(128^3 tasks, reduction 100, 40 nm error bound) with manifests. ``export_vps``: petaseg
``export_segmentation`` from a Zarr volume (it writes level 0 too); ``igneous_vps``:
``create_downsampling_tasks`` + ``create_meshing_tasks`` + ``create_mesh_manifest_tasks`` on a
LocalTaskQueue(parallel=1), level 0 already uploaded (not timed). Skeletons (kimimaro, 128^3
blocks) are timed the same way as ``export_skeleton_vps`` / ``igneous_skeleton_vps``. The
machine is shared, so wall times swing with other jobs; ``*_cpu_s`` and ``*_vs_igneous_cpu``
(CPU seconds of the process, all threads) are the fairer comparison.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.correct_experiment import (
    Part,
    best_threshold,
    boundary_from_raw,
    evaluate,
    prepare_part,
    train,
)
from benchmarks.inputs import affinities, fib_boundary, quiet_fd

REPO = Path(__file__).resolve().parents[1]
FIB = REPO.parent / "shared" / "data" / "fib_medulla_flyem" / "fib_medulla_train.h5"
SEG_THRESHOLDS = (0.6, 0.65, 0.7, 0.72, 0.75, 0.8)
BETAS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
TRAIN, EVAL, EVAL_UNSEEN = slice(0, 100), slice(100, 160), slice(130, 160)


def log(msg: str) -> None:
    print(f"[bench correct] {msg}", file=sys.stderr, flush=True)


def load() -> dict[str, np.ndarray]:
    import h5py

    if not FIB.exists():
        from pipeline.errors import InputError

        raise InputError(f"{FIB} is missing: bench correct needs ../shared/data")
    with h5py.File(FIB, "r") as f:
        return {
            "raw": f["volumes/raw"][:],
            "fragments": f["volumes/labels/supervoxels"][:].astype(np.uint64),
            "gt": f["volumes/labels/neuron_ids"][:],
        }


def waterz_luts(b: np.ndarray, fragments: np.ndarray, thresholds) -> dict[float, object]:
    """waterz on the given fragments: a fragment -> segment table per threshold."""
    import waterz

    from pipeline.lut import Lut

    affs = affinities(b)
    ids, first = np.unique(fragments, return_index=True)
    out = {}
    with quiet_fd():
        segs = waterz.agglomerate(
            affs, list(thresholds), fragments=np.ascontiguousarray(fragments.copy())
        )
        for t, seg in zip(thresholds, segs, strict=True):
            out[t] = Lut.from_arrays(ids, seg.ravel()[first].astype(np.uint64))
    return out


def elf_luts(b: np.ndarray, fragments: np.ndarray, betas) -> dict[float, object]:
    """python-elf multicut on the given fragments: a fragment -> segment table per beta
    (a segment is named by its smallest fragment id)."""
    import elf.segmentation.features as ef
    import elf.segmentation.multicut as em

    from pipeline.lut import Lut

    frags = np.ascontiguousarray(fragments, np.uint64)
    rag = ef.compute_rag(frags, n_threads=1)
    feats = ef.compute_boundary_features(rag, frags, b, n_threads=1)
    ids = np.unique(frags)
    out = {}
    for beta in betas:
        costs = em.compute_edge_costs(
            feats[:, 0], edge_sizes=feats[:, -1], beta=beta, weighting_scheme="all"
        )
        node = np.asarray(em.multicut_kernighan_lin(rag, costs))[ids.astype(np.int64)]
        first = np.full(node.max() + 1, np.iinfo(np.uint64).max, np.uint64)
        np.minimum.at(first, node, ids)
        out[beta] = Lut.from_arrays(ids, first[node])
    return out


def correction(data, bnd, tmp: Path, client) -> dict:
    """Train on the training part, correct the evaluation parts (petaseg's segmentation and the
    peer's), and sum it up."""
    tmp.mkdir(parents=True, exist_ok=True)
    parts = prepare_parts(data, bnd, tmp, client)
    train_part, eval_part = parts["train"], parts["eval"]
    t_seg, train_scores = best_threshold(train_part)
    t0 = time.perf_counter()
    model = train([train_part], [t_seg])
    train_s = time.perf_counter() - t0
    log(f"trained in {train_s:.1f} s: thresholds {model.thresholds}")
    t0 = time.perf_counter()
    ours = corrected(model, eval_part, eval_part.lut(t_seg), tmp / "ours", client)
    correct_s = time.perf_counter() - t0
    log(f"petaseg: VI {ours['vi_before']:.3f} -> {ours['vi_after']:.3f}")
    p130 = parts["eval130"]
    unseen = corrected(model, p130, p130.lut(t_seg), tmp / "z130", client)
    beta, peer = peer_correction(model, data, bnd, train_part, eval_part, tmp, client)
    wz = waterz_luts(bnd[EVAL], data["fragments"][EVAL], [t_seg])[t_seg]
    return {
        **rounded(ours, OURS_KEYS),
        **rounded(unseen, ("vi_before", "vi_after"), "z130_"),
        "peer": f"python-elf multicut (kernighan-lin), beta {beta} (best on training part)",
        **rounded(peer, PEER_KEYS, "peer_"),
        **rounded(ours, ("precision_at_10", "precision_at_10_all_candidates", "true_error_rate")),
        **rounded(peer, ("precision_at_10",), "peer_"),
        "waterz_vi_before": r4(eval_part.truth.scores(wz)["vi_sum"]),
        "ranked_candidates": ours["ranked"],
        "applied": ours["applied"],
        "peer_applied": peer["applied"],
        "auto_thresholds": model.thresholds,
        "segmentation_threshold": t_seg,
        "train_vi_at_threshold": r4(train_scores["vi_sum"]),
        "train_examples": {k: model.info[k] for k in ("pair_examples", "split_examples")},
        "train_s": round(train_s, 2),
        "correct_s": round(correct_s, 2),
    }


OURS_KEYS = tuple(
    f"{score}_{when}"
    for score in ("vi", "vi_split", "vi_merge", "arand")
    for when in ("before", "after")
)
PEER_KEYS = ("vi_before", "vi_after", "arand_before", "arand_after")


def r4(x) -> float:
    return round(float(x), 4)


def rounded(scores: dict, keys, prefix: str = "") -> dict[str, float]:
    """``keys`` of ``scores`` to 4 decimals, named with ``prefix``."""
    return {f"{prefix}{k}": r4(scores[k]) for k in keys}


def prepare_parts(data, bnd, tmp: Path, client) -> dict[str, Part]:
    """The training and evaluation parts, each with its region graph, tables and features."""
    parts = {}
    for name, zs in (("train", TRAIN), ("eval", EVAL), ("eval130", EVAL_UNSEEN)):
        t0 = time.perf_counter()
        parts[name] = prepare_part(
            tmp,
            name,
            data["raw"][zs],
            data["fragments"][zs],
            data["gt"][zs],
            boundary=bnd[zs],
            thresholds=SEG_THRESHOLDS,
            client=client,
        )
        log(f"prepared {name} part in {time.perf_counter() - t0:.1f} s")
    return parts


def corrected(model, part: Part, lut, out: Path, client) -> dict:
    """``evaluate`` with the edit log and the candidate list at ``out``.sqlite / .json."""
    return evaluate(
        model,
        part,
        lut,
        str(out.with_suffix(".sqlite")),
        str(out.with_suffix(".json")),
        client=client,
    )


def peer_correction(model, data, bnd, train_part: Part, eval_part: Part, tmp: Path, client):
    """(beta, scores): elf multicut on the same fragments and boundary map, beta chosen on the
    training part, corrected by the same model."""
    train_luts = elf_luts(bnd[TRAIN], data["fragments"][TRAIN], BETAS)
    beta = min(train_luts, key=lambda t: train_part.truth.scores(train_luts[t])["vi_sum"])
    peer_lut = elf_luts(bnd[EVAL], data["fragments"][EVAL], [beta])[beta]
    peer = corrected(model, eval_part, peer_lut, tmp / "peer", client)
    log(f"elf multicut: VI {peer['vi_before']:.3f} -> {peer['vi_after']:.3f}")
    return beta, peer


STANDIN_KEYS = (
    "vi_before",
    "vi_after",
    "peer_vi_before",
    "peer_vi_after",
    "precision_at_10",
    "true_error_rate",
    "applied",
    "segmentation_threshold",
)


def _timed(fn):
    """(result, wall seconds, CPU seconds of this process): CPU time is the fair measure on a
    shared machine, where other jobs stretch wall time unevenly."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def export_speed(labels: np.ndarray, tmp: Path) -> dict:
    """petaseg export vs igneous on one segmentation, single-threaded, same work."""
    from distributed import Client, LocalCluster

    from pipeline.export.objects import ObjectParams
    from pipeline.export.precomputed import export_segmentation
    from pipeline.io.volume import create_volume

    voxels = int(labels.size)
    vol = create_volume(str(tmp / "seg.zarr" / "labels"), labels.shape, labels.dtype, (10, 10, 10))
    vol.write(vol.roi, labels)
    ours = {}
    cluster = LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    )
    client = Client(cluster)
    try:
        for name, params, levels in (
            ("mesh", ObjectParams(skeletons=False, min_size=1), 3),
            ("skeleton", ObjectParams(meshes=False, min_size=1, dust_vox=1000), 1),
        ):
            ours[name] = _timed(
                lambda name=name, params=params, levels=levels: export_segmentation(
                    str(tmp / f"ng_{name}"),
                    vol.url,
                    levels=levels,
                    chunks=(64, 64, 64),
                    objects=params,
                    client=client,
                    progress=False,
                )
            )
    finally:
        client.close()
        cluster.close()
    ig = igneous_speed(labels, tmp)
    (_, _, secs), wall, cpu = ours["mesh"]
    (_, _, skel_secs), skel_wall, skel_cpu = ours["skeleton"]
    return {
        "export_volume": list(labels.shape),
        "export_vps": round(voxels / wall),
        "igneous_vps": round(voxels / ig["mesh"][0]),
        "export_vs_igneous": round(ig["mesh"][0] / wall, 3),
        "export_cpu_s": round(cpu, 2),
        "igneous_cpu_s": round(ig["mesh"][1], 2),
        "export_vs_igneous_cpu": round(ig["mesh"][1] / cpu, 3),
        "export_s": {k: round(v, 2) for k, v in secs.items()},
        "igneous_s": round(ig["mesh"][0], 2),
        "export_skeleton_vps": round(voxels / skel_wall),
        "igneous_skeleton_vps": round(voxels / ig["skel"][0]),
        "skeleton_vs_igneous_cpu": round(ig["skel"][1] / skel_cpu, 3),
    }


def igneous_speed(labels: np.ndarray, tmp: Path) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of igneous: downsampling + meshing + manifests; skeletons + merge."""
    import igneous.task_creation as tc
    from cloudvolume import CloudVolume
    from taskqueue import LocalTaskQueue

    out = {}
    for name in ("mesh", "skel"):
        path = f"file://{tmp}/ig_{name}"
        info = CloudVolume.create_new_info(
            1,
            "segmentation",
            str(labels.dtype),
            "compressed_segmentation",
            [10, 10, 10],
            [0, 0, 0],
            list(labels.shape[::-1]),
            chunk_size=[64, 64, 64],
        )
        cv = CloudVolume(path, info=info, progress=False)
        cv.commit_info()
        cv[:, :, :] = labels.T[..., None]
        tq = LocalTaskQueue(parallel=1, progress=False)

        def run(tasks_of, tq=tq):
            with quiet_fd():
                for make in tasks_of:
                    tq.insert(make())
                    tq.execute(progress=False)

        if name == "mesh":
            steps = [
                lambda path=path: tc.create_downsampling_tasks(path, mip=0, num_mips=2),
                lambda path=path: tc.create_meshing_tasks(path, mip=0, shape=(128, 128, 128)),
                lambda path=path: tc.create_mesh_manifest_tasks(path),
            ]
        else:
            steps = [
                lambda path=path: tc.create_skeletonizing_tasks(
                    path, mip=0, shape=(128, 128, 128), teasar_params={"scale": 1.5, "const": 300}
                ),
                lambda path=path: tc.create_unsharded_skeleton_merge_tasks(path),
            ]
        _, wall, cpu = _timed(lambda steps=steps: run(steps))
        out[name] = (wall, cpu)
    return out


def main(json_out: bool = False) -> dict:
    from distributed import Client, LocalCluster

    data = load()
    t0 = time.perf_counter()
    bnd, source = fib_boundary(data["raw"])
    log(f"boundary map ({source}) in {time.perf_counter() - t0:.1f} s")
    result: dict = {"data": "fib_medulla_train z<100 train / z 100..159 eval", "boundary": source}
    with tempfile.TemporaryDirectory(prefix="bench_correct_") as tmpdir:
        tmp = Path(tmpdir)
        cluster = LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        )
        client = Client(cluster)
        try:
            result.update(correction(data, bnd, tmp / "main", client))
            if source.startswith("model"):
                log("again with the stand-in boundary map")
                weak = correction(data, boundary_from_raw(data["raw"]), tmp / "standin", client)
                result.update({f"standin_{k}": weak[k] for k in STANDIN_KEYS})
        finally:
            client.close()
            cluster.close()
        result.update(export_speed(data["gt"].astype(np.uint64), tmp))
    if not json_out:
        log(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    print(json.dumps(main(json_out=True)))
