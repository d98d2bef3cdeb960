"""Affinity faces and the affinity watershed on FIB-SEM (issue 15, item 1): an affinity model
predicts fib_medulla_train z 100-159; ``petaseg segment`` runs on z 100-129 (seen in training)
and z 130-159 (never trained on) with both fragment methods (watershed of ``1 - mean``,
affinity_watershed) and both kinds of graph faces (boundary: larger boundary value of the two
voxels; affinity: 1 - the face's affinity), mean agglomeration, thresholds 0.1..0.8. The
watershed threshold and each combination's agglomeration threshold are chosen on z 100-129 and
reported on z 130-159 beside the whole sweep; nothing is chosen on z 130-159.

    python -m benchmarks.affinity_graph_experiment MODEL.pt WORKDIR

MODEL.pt: an exported affinity model (``petaseg train export``). Prints two Markdown tables.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from pipeline.evaluate import evaluate_arrays
from pipeline.io.volume import create_volume, exists, open_volume

FIB = Path(__file__).resolve().parents[2] / "shared/data/fib_medulla_flyem/fib_medulla_train.h5"
Z0 = 100  # the prediction covers z 100-159
THRESHOLDS = [0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
WS_THRESHOLDS = [0.1, 0.2, 0.3, 0.5]
COMBOS = [(m, f) for m in ("watershed", "affinity_watershed") for f in ("boundary", "affinity")]


def predict(model: str, work: Path) -> str:
    raw_url, pred_url = f"{work}/raw.zarr/raw", f"{work}/pred.zarr/affs"
    if not exists(raw_url):
        raw = h5py.File(FIB)["volumes/raw"][Z0:160]
        vol = create_volume(raw_url, raw.shape, raw.dtype, (10, 10, 10), chunks=(60, 125, 125))
        vol.write(vol.roi, raw)
    cmd = ["petaseg", "predict", "--model", model, "--input", raw_url, "--output", pred_url]
    subprocess.run([*cmd, "--cluster", "threads:1", "--json"], check=True, capture_output=True)
    return pred_url


def crop(pred_url: str, work: Path, z0: int, z1: int) -> str:
    url = f"{work}/crop{z0}-{z1}.zarr/affs"
    if not exists(url):
        v = open_volume(pred_url)
        data = v.read(v.roi)[:, z0 - Z0 : z1 - Z0]
        keep = ("offsets", "output", "value_scale", "value_offset")
        out = create_volume(
            url, data.shape[1:], data.dtype, v.voxel_size, chunks=(z1 - z0, 64, 64),
            channels=data.shape[0], attrs={k: a for k, a in v.attrs.items() if k in keep},
        )  # fmt: skip
        out.write(out.roi, data)
    return url


def segment(affs: str, work: Path, z: tuple[int, int], ws: float, method: str, faces: str):
    """Rows of VI / ARAND per threshold of one ``petaseg segment`` run."""
    name = f"{work}/z{z[0]}-{z[1]}_ws{ws}_{method}_{faces}"
    frag = f"{work}/z{z[0]}-{z[1]}_ws{ws}_{method}.zarr/fragments"
    cmd = ["petaseg", "segment", "--boundaries", affs, "--output", f"{name}.zarr/seg",
           "--method", method, "--faces", faces, "--ws-threshold", str(ws),
           "--threshold", ",".join(map(str, THRESHOLDS)), "--fragments", frag,
           "--tables", f"{name}_tables", "--cluster", "threads:1", "--json"]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    gt = h5py.File(FIB)["volumes/labels/neuron_ids"][z[0] : z[1]]
    n_frag = len(np.unique(open_volume(frag).read()))
    rows = []
    for item in json.loads(out.strip().splitlines()[-1])["segmentations"]:
        score = evaluate_arrays(open_volume(item["segmentation"]).read(), gt)
        keys = ("vi_split", "vi_merge", "vi_sum", "adapted_rand")
        rows.append({"z": list(z), "ws_threshold": ws, "fragments": method, "faces": faces,
                     "threshold": item["threshold"], "n_fragments": n_frag,
                     **{k: round(float(score[k]), 4) for k in keys}})  # fmt: skip
    return rows


def tables(rows: list[dict]) -> str:
    lines = ["| fragments | graph faces | fragments (n) | threshold (chosen on z 100-129) | "
             "VI split | VI merge | VI sum | ARAND | best VI sum on z 130-159 (threshold) |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for m, f in COMBOS:
        train = [r for r in rows if r["z"] == [100, 130] and (r["fragments"], r["faces"]) == (m, f)]
        test = [r for r in rows if r["z"] == [130, 160] and (r["fragments"], r["faces"]) == (m, f)]
        t = min(train, key=lambda r: r["vi_sum"])["threshold"]
        r = next(x for x in test if x["threshold"] == t)
        b = min(test, key=lambda x: x["vi_sum"])
        lines.append(f"| {m} | {f} | {r['n_fragments']} | {t} | {r['vi_split']} | "
                     f"{r['vi_merge']} | {r['vi_sum']} | {r['adapted_rand']} | "
                     f"{b['vi_sum']} ({b['threshold']}) |")  # fmt: skip
    lines += ["", "z 130-159, VI sum / ARAND per threshold:", "",
              "| fragments | faces | " + " | ".join(map(str, THRESHOLDS)) + " |",
              "|---|---|" + "---|" * len(THRESHOLDS)]  # fmt: skip
    for m, f in COMBOS:
        by_t = {r["threshold"]: r for r in rows
                if r["z"] == [130, 160] and (r["fragments"], r["faces"]) == (m, f)}  # fmt: skip
        cells = [f"{by_t[t]['vi_sum']:.3f} / {by_t[t]['adapted_rand']:.3f}" for t in THRESHOLDS]
        lines.append(f"| {m} | {f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(model: str, workdir: str) -> None:
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    pred = predict(model, work)
    train, test = crop(pred, work, 100, 130), crop(pred, work, 130, 160)
    select = [r for ws in WS_THRESHOLDS
              for r in segment(train, work, (100, 130), ws, "watershed", "boundary")]  # fmt: skip
    ws = min(select, key=lambda r: r["vi_sum"])["ws_threshold"]
    print(f"watershed threshold chosen on z 100-129: {ws}")
    rows = []
    for z, url in (((100, 130), train), ((130, 160), test)):
        for m, f in COMBOS:
            rows += segment(url, work, z, ws, m, f)
    (work / "rows.json").write_text(json.dumps(rows, indent=1))
    print(tables(rows))


if __name__ == "__main__":
    main(*sys.argv[1:3])
