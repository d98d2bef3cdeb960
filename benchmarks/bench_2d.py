"""The 2D tasks of the model library, each trained and measured on real EM sections.

- semantic: every (architecture, upsampling) pair on ISBI 2012 (train 0-19, held-out 20-23;
  24-29 are not in shared/), plus U-Net and FCN-8s on the five VNC classes (train 0-15,
  held-out 16-19);
- the sliding-window patch classifier against the FCN (pixels/s and mIoU);
- classification + localization of single mitochondria / synapses (VNC) and neuron profiles (FIB);
- selective-search proposals against the RPN's, at the same number of boxes;
- two-stage (Faster R-CNN) and single-shot grid detection of VNC mitochondria and synapses;
- Mask R-CNN on VNC mitochondria and FIB neuron profiles (train z 0-129, held-out 130-159;
  z >= 160 is not in shared/);
- torchvision's stock ResNet-50-FPN Faster R-CNN and Mask R-CNN (weights=None,
  weights_backbone=None; grayscale repeated to 3 channels; resizing disabled as for ours) on the
  same data with the same budget (iterations, batch, tile, optimiser, schedule).

Trains and infers on the first GPU when there is one, else on the CPU (the ``device`` key says
which, with the thread count); ``PETASEG_BENCH2D_THREADS`` sets torch's CPU threads. Set
``PETASEG_BENCH2D_SCALE`` (e.g. 0.05) to shrink every iteration budget for a smoke run, and
``PETASEG_BENCH2D_ONLY`` (comma-separated: semantic, sliding_window, localize, selective_search,
detection) to run some parts only (sliding_window needs semantic), e.g. two parts side by side on
two cores.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

import numpy as np
import torch

SCALE = float(os.environ.get("PETASEG_BENCH2D_SCALE", "1"))
BUDGET = {
    "semantic": {"iterations": 300, "batch": 4, "tile": 128},
    "patch": {"iterations": 600, "batch": 64, "patch": 34},
    "localize": {"iterations": 600, "batch": 16, "crop": 64},
    "detect": {"iterations": 300, "batch": 2, "tile": 256},
    "optimizer": "AdamW lr 1e-3, weight decay 1e-4, 5% linear warm-up, cosine decay, grad-norm clip 10",
}
PROPOSAL_N = (100, 300, 1000)


def _it(name: str) -> int:
    return max(2, int(round(BUDGET[name]["iterations"] * SCALE)))


def _log(msg: str) -> None:
    print(f"[bench 2d {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _r(x, nd=4):
    return None if x is None else round(float(x), nd)


def bench_semantic(out: dict) -> dict:
    from models.tasks.semantic import valid_variants
    from models.train2d.recipes import evaluate_semantic, train_semantic
    from workflows.training.data2d import semantic_data

    b = BUDGET["semantic"]
    table: dict = {"isbi": {}, "vnc": {}}
    models = {}
    for data, variants in (
        ("isbi", valid_variants()),
        ("vnc", [("unet", "transposed"), ("fcn8s", "transposed")]),
    ):
        ti, tm, classes = semantic_data(data, "train")
        vi, vm, _ = semantic_data(data, "val")
        for arch, up in variants:
            model, hist = train_semantic(
                ti, tm, classes, arch, up, _it("semantic"), b["batch"], b["tile"]
            )
            s = evaluate_semantic(model, vi, vm)
            table[data][f"{arch}/{up}"] = {
                "miou": _r(s["miou"]),
                "dice": _r(s["dice"]),
                "iou": {k: _r(v) for k, v in s["iou"].items()},
                "train_s": _r(hist["seconds"], 1),
                "train_images_per_s": _r(hist["images_per_s"], 2),
                "infer_pixels_per_s": _r(s["pixels_per_s"], 0),
            }
            models[(data, arch, up)] = model
            _log(f"semantic {data} {arch}/{up}: mIoU {s['miou']:.3f} ({hist['seconds']:.0f} s)")
    best = max(table["isbi"], key=lambda k: table["isbi"][k]["miou"])
    best_vnc = max(table["vnc"], key=lambda k: table["vnc"][k]["miou"])
    out.update(
        semantic_miou=table["isbi"][best]["miou"],
        semantic_best=f"isbi {best}",
        semantic_vnc_miou=table["vnc"][best_vnc]["miou"],
        semantic_vnc_best=best_vnc,
        semantic_table=table,
    )
    return models


def bench_sliding_window(out: dict, fcn_model) -> None:
    from models.train2d.data import to_float
    from models.train2d.fit import synchronize
    from models.train2d.metrics import confusion_matrix, segmentation_scores
    from models.train2d.recipes import evaluate_semantic, model_device, train_patch_classifier
    from workflows.training.data2d import semantic_data

    b = BUDGET["patch"]
    ti, tm, classes = semantic_data("isbi", "train")
    vi, vm, _ = semantic_data("isbi", "val")
    model, hist = train_patch_classifier(ti, tm, classes, _it("patch"), b["batch"])
    conf = np.zeros((2, 2), np.int64)
    device = model_device(model)
    t0 = time.perf_counter()
    for img, cmap in zip(vi, vm, strict=True):
        logits = model.dense(to_float(img[None, None], model.mean, model.std).to(device))
        conf += confusion_matrix(logits[0].argmax(0).cpu().numpy(), cmap, 2)
    dense_pps = vi.size / (time.perf_counter() - t0)
    sw_scores = segmentation_scores(conf, classes)
    crop = to_float(vi[0, 192:320, 192:320][None, None], model.mean, model.std).to(device)
    t0 = time.perf_counter()
    naive = model.sliding_window(crop, batch=1024)
    synchronize(device)
    naive_pps = crop[0, 0].numel() / (time.perf_counter() - t0)
    same = float((naive - model.dense(crop)).abs().max())
    fcn = evaluate_semantic(fcn_model, vi, vm)
    out["sliding_window_speedup"] = _r(fcn["pixels_per_s"] / naive_pps, 1)
    out["sliding_window"] = {
        "sliding_window_miou": _r(sw_scores["miou"]),
        "fcn8s_miou": _r(fcn["miou"]),
        "sliding_window_pixels_per_s": _r(naive_pps, 0),
        "fcn8s_pixels_per_s": _r(fcn["pixels_per_s"], 0),
        "same_classifier_dense_pixels_per_s": _r(dense_pps, 0),
        "same_classifier_dense_speedup": _r(dense_pps / naive_pps, 1),
        "dense_vs_sliding_max_abs_diff": same,
        "note": "FCN = FCN-8s (transposed) of the semantic table; the sliding-window mIoU is computed "
        "with the identical dense form of the same patch classifier (max abs logit difference above); "
        "sliding-window speed timed on a 128x128 crop, patches batched 1024 at a time",
        "train_s": _r(hist["seconds"], 1),
    }
    _log(f"sliding window: {naive_pps:.0f} px/s vs FCN {fcn['pixels_per_s']:.0f} px/s")


def bench_localize(out: dict) -> None:
    from models.train2d.data import localization_crops
    from models.train2d.recipes import evaluate_localizer, train_localizer
    from workflows.training.data2d import instance_data

    b = BUDGET["localize"]
    res = {}
    for data, centered in (("vnc", False), ("fib", True)):
        rng = np.random.default_rng(0)
        train = localization_crops(instance_data(data, "train"), b["crop"], rng, centered)
        val = localization_crops(instance_data(data, "val"), b["crop"], rng, centered)
        model, hist = train_localizer(train, _it("localize"), b["batch"])
        s = evaluate_localizer(model, val)
        res[data] = {
            **{k: _r(v) for k, v in s.items()},
            "train_crops": len(train),
            "classes": list(train.class_names),
            "train_s": _r(hist["seconds"], 1),
            "train_images_per_s": _r(hist["images_per_s"], 1),
        }
        _log(f"localize {data}: acc {s['acc']:.3f} IoU {s['iou']:.3f}")
    out.update(
        localize_iou=res["vnc"]["iou"],
        localize_acc=res["vnc"]["acc"],
        localize_fib_iou=res["fib"]["iou"],
        localize=res,
    )


class StockRCNN(torch.nn.Module):
    """torchvision's stock ResNet-50-FPN detector fed our grayscale tiles as 3 equal channels,
    with the same no-resize transform as ours, behind our ``losses``/``predict`` calls."""

    def __init__(self, masks: bool, num_classes: int, norm: dict) -> None:
        super().__init__()
        import torchvision

        from models.tasks.detect_two_stage import NoResizeTransform

        fn = (
            torchvision.models.detection.maskrcnn_resnet50_fpn
            if masks
            else torchvision.models.detection.fasterrcnn_resnet50_fpn
        )
        self.net = fn(weights=None, weights_backbone=None, num_classes=num_classes + 1)
        self.net.transform = NoResizeTransform(
            1, 1 << 16, [norm["mean"]] * 3, [norm["std"]] * 3, size_divisible=32
        )

    @staticmethod
    def rgb(images):
        return [img.expand(3, -1, -1) for img in images]

    def losses(self, images, targets):
        return self.net(self.rgb(images), targets)

    @torch.no_grad()
    def predict(self, images):
        self.net.eval()
        return self.net(self.rgb(images))


def _train_eval(model, train, val, masks: bool, lr: float = 1e-3) -> tuple[dict, dict]:
    from models.train2d.recipes import evaluate_detection, train_detection

    b = BUDGET["detect"]
    hist = train_detection(model, train, _it("detect"), b["batch"], b["tile"], lr=lr, masks=masks)
    s = evaluate_detection(model, val, masks)
    s = {k: (_r(v) if isinstance(v, float) else v) for k, v in s.items()}
    s.update(
        train_s=_r(hist["seconds"], 1),
        train_images_per_s=_r(hist["images_per_s"], 2),
        final_loss=_r(hist["loss"][-1]),
        lr=lr,
        device=hist["device"],
    )
    return s, hist


def _train_eval_stock(masks: bool, train, val) -> dict:
    """The stock model at the shared budget; if it diverges at lr 1e-3 (from scratch, no
    frozen BN), once more from a fresh model at 1e-4, and the result says so."""
    from models.errors import InputError
    from models.train2d.data import intensity_stats

    for lr in (1e-3, 1e-4):
        torch.manual_seed(0)
        model = StockRCNN(masks, len(train.class_names), intensity_stats(train.images))
        try:
            s, _ = _train_eval(model, train, val, masks, lr)
            s["params"] = sum(p.numel() for p in model.parameters())
            return s
        except InputError as e:
            _log(f"stock model diverged at lr {lr}: {e}")
            failed = str(e)
    return {"error": failed}


SS_SETTINGS = {
    "default": {},  # models.tasks.proposals defaults: scales 100, 300; sigma 1.5; min_size 30
    "paper": {"scales": (50, 100), "sigma": 0.8, "min_size": 10},  # finer, as for photographs
}


def bench_selective_search(out: dict) -> None:
    """Selective search alone, at the bench's box counts and with every box it makes, under its
    defaults and under the paper's finer over-segmentation: where its recall is lost."""
    from models.tasks.proposals import selective_search
    from models.train2d.data import section_targets
    from models.train2d.metrics import proposal_scores
    from workflows.training.data2d import instance_data

    val = instance_data("vnc", "val")
    gts = [section_targets(val, i, masks=False)[1] for i in range(len(val))]
    table = {}
    for name, kw in SS_SETTINGS.items():
        t0 = time.perf_counter()
        boxes = [selective_search(val.images[i], **kw) for i in range(len(val))]
        row = {"seconds_per_image": _r((time.perf_counter() - t0) / len(val), 1)}
        row["boxes_per_image"] = _r(np.mean([len(b) for b in boxes]), 0)
        for n in (*PROPOSAL_N, None):
            sc = proposal_scores(
                [(b[:n], t["boxes"], t["labels"]) for b, t in zip(boxes, gts, strict=True)]
            )
            row[str(n or "all")] = {"recall": _r(sc["recall"]), "mabo": _r(sc["mabo"])}
        table[name] = dict(
            row, params={k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}
        )
        _log(f"selective search {name}: {row}")
    out["selective_search_settings"] = table


def _speeds(prefix: str, s: dict) -> dict:
    """Training and inference images/s of one detector run under top-level keys."""
    return {
        f"{prefix}_train_images_per_s": s.get("train_images_per_s"),
        f"{prefix}_infer_images_per_s": s.get("infer_images_per_s"),
    }


def _maps(prefix: str, s: dict, kind: str = "box") -> dict:
    """mAP@.5 and mAP@[.5:.95] (of boxes or masks) of one detector run under top-level keys."""
    return {f"{prefix}_map50": s.get(f"{kind}_map50"), f"{prefix}_map": s.get(f"{kind}_map")}


def _bench_detectors(out: dict, train, val) -> tuple[dict, dict]:
    """Two-stage and grid detection of VNC mitochondria and synapses: the table and models."""
    from models.train2d.recipes import build_detection_model

    table, models = {}, {}
    for kind, label in (("two_stage", "two-stage"), ("grid", "grid")):
        models[kind] = build_detection_model(kind, train)
        table[kind], _ = _train_eval(models[kind], train, val, False)
        if kind == "grid":
            table[kind]["anchors"] = models[kind].config["anchors"]
        _log(f"{label}: {table[kind]}")
    out.update(**_maps("detect", table["two_stage"]), **_maps("grid_detect", table["grid"]))
    return table, models


def _proposal_row(scores: dict) -> dict:
    return {
        "recall": _r(scores["recall"]),
        "mabo": _r(scores["mabo"]),
        "boxes_per_image": scores["boxes_per_image"],
    }


def bench_proposals(out: dict, two_stage, val) -> None:
    """Selective search against the trained RPN: same held-out sections, same box counts."""
    from models.tasks.proposals import selective_search
    from models.train2d.data import section_targets
    from models.train2d.metrics import proposal_scores
    from models.train2d.recipes import model_device

    t0 = time.perf_counter()
    boxes = {"selective_search": [selective_search(val.images[i]) for i in range(len(val))]}
    seconds = {"selective_search": _r((time.perf_counter() - t0) / len(val), 2)}
    t0 = time.perf_counter()
    device = model_device(two_stage)
    boxes["rpn"], gts = [], []
    for i in range(len(val)):
        image, target = section_targets(val, i, masks=False)
        boxes["rpn"].append(two_stage.propose([image.to(device)], max(PROPOSAL_N))[0].cpu())
        gts.append((target["boxes"], target["labels"]))
    seconds["rpn"] = _r((time.perf_counter() - t0) / len(val), 2)
    ptable = {
        str(n): {
            name: _proposal_row(
                proposal_scores([(b[:n], g, lab) for b, (g, lab) in zip(bs, gts, strict=True)])
            )
            for name, bs in boxes.items()
        }
        for n in PROPOSAL_N
    }
    n = str(max(PROPOSAL_N))
    out.update(
        proposals_recall=ptable[n]["selective_search"]["recall"],
        proposals_mabo=ptable[n]["selective_search"]["mabo"],
        rpn_recall=ptable[n]["rpn"]["recall"],
        rpn_mabo=ptable[n]["rpn"]["mabo"],
        proposals_n=int(n),
        proposals_table=ptable,
        proposals_seconds_per_image=seconds,
        proposals_total_selective_search=[len(b) for b in boxes["selective_search"]],
    )
    _log(f"proposals: {ptable}")


def _bench_instances(out: dict, table: dict) -> tuple:
    """Mask R-CNN on VNC mitochondria and FIB neuron profiles; the VNC data for the stock run."""
    from models.train2d.recipes import build_detection_model
    from workflows.training.data2d import instance_data

    data = {}
    for name, objects in (("vnc", ("mitochondria",)), ("fib", None)):
        train, val = (instance_data(name, part, objects=objects) for part in ("train", "val"))
        row = f"mask_rcnn_{name}"
        table[row], _ = _train_eval(build_detection_model("instance", train), train, val, True)
        _log(f"mask rcnn {name}: {table[row]}")
        data[name] = train, val
    vnc_scores = table["mask_rcnn_vnc"]
    out.update(
        **_maps("instance_mask", vnc_scores, "mask"),
        instance_box_map50=vnc_scores.get("box_map50"),
        **_maps("instance_fib_mask", table["mask_rcnn_fib"], "mask"),
    )
    return data["vnc"]


def _bench_stock(out: dict, table: dict, boxes_data: tuple, mask_data: tuple) -> None:
    """torchvision's stock ResNet-50-FPN Faster and Mask R-CNN on the same data and budget."""
    out["detection_table"] = table
    table["torchvision_faster_rcnn_r50_fpn"] = tv = _train_eval_stock(False, *boxes_data)
    _log(f"torchvision faster: {tv}")
    out.update(
        **_maps("torchvision_detect", tv),
        **_speeds("torchvision_detect", tv),
        **_speeds("detect", table["two_stage"]),
        **_speeds("grid_detect", table["grid"]),
    )
    table["torchvision_mask_rcnn_r50_fpn"] = tm = _train_eval_stock(True, *mask_data)
    _log(f"torchvision mask: {tm}")
    out.update(
        **_maps("torchvision_instance_mask", tm, "mask"),
        torchvision_instance_box_map50=tm.get("box_map50"),
        **_speeds("torchvision_instance", tm),
        **_speeds("instance", table["mask_rcnn_vnc"]),
    )


def bench_detection(out: dict) -> None:
    """Detectors, proposals and instance segmentation on VNC (and FIB), then the stock models."""
    from workflows.training.data2d import instance_data

    train, val = instance_data("vnc", "train"), instance_data("vnc", "val")
    table, models = _bench_detectors(out, train, val)
    bench_proposals(out, models["two_stage"], val)
    mask_data = _bench_instances(out, table)
    for name, model in models.items():
        table[name]["params"] = sum(p.numel() for p in model.parameters())
    _bench_stock(out, table, (train, val), mask_data)


def main(json_out: bool = False) -> dict:
    from models.train2d.fit import default_device
    from workflows.training.data2d import SHARED_DATA

    if os.environ.get("PETASEG_BENCH2D_THREADS"):
        torch.set_num_threads(int(os.environ["PETASEG_BENCH2D_THREADS"]))
    torch.manual_seed(0)
    t0 = time.perf_counter()
    device = default_device()
    where = (
        f"GPU {torch.cuda.get_device_name(device)} (training and inference; metrics on CPU)"
        if device.type == "cuda"
        else f"CPU ({os.cpu_count()} cores, torch threads={torch.get_num_threads()}; no GPU found)"
    )
    out: dict = {
        "device": where,
        "budget": {
            k: (dict(v, iterations=_it(k)) if isinstance(v, dict) else v) for k, v in BUDGET.items()
        },
        "budget_scale": SCALE,
        "data": {
            "isbi": "ISBI 2012 sections 0-19 train, 20-23 held out (24-29 not in shared/)",
            "vnc": "VNC stack1 sections 0-15 train, 16-19 held out; detection/instances/localization at 2x "
            "downsampling (9.2 nm px, 512x512 sections)",
            "fib": "FIB medulla z 0-129 train, 130-159 held out (z >= 160 not in shared/)",
        },
    }
    if not (SHARED_DATA / "isbi2012").is_dir():
        out["skipped"] = f"real data not found under {SHARED_DATA}"
        return out
    models: dict = {}
    sections = [
        ("semantic", lambda: models.update(bench_semantic(out))),
        (
            "sliding_window",
            lambda: bench_sliding_window(out, models[("isbi", "fcn8s", "transposed")]),
        ),
        ("localize", lambda: bench_localize(out)),
        ("selective_search", lambda: bench_selective_search(out)),
        ("detection", lambda: bench_detection(out)),
    ]
    only = [p for p in os.environ.get("PETASEG_BENCH2D_ONLY", "").split(",") if p]
    if only:
        out["only"] = only
    for name, run in sections:  # one failing part must not lose the others' figures
        if only and name not in only:
            continue
        try:
            run()
        except Exception as e:  # noqa: BLE001 - reported in the result
            _log(f"{name} failed:\n{traceback.format_exc()}")
            out.setdefault("errors", {})[name] = f"{type(e).__name__}: {e}"
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(main(True), default=str))
