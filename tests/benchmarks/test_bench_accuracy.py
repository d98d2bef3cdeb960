"""``petaseg bench accuracy``: the choice of a setting never looks at the data it is scored on
(synthetic curves), a workflow's segmentations are scored whole and on z 130-159, and the bench
runs end to end on a small crop of the real volumes (y, x < 32, few settings, a tiny untrained
affinity model) with every key the issue asks for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.evaluate.choice import choose, cremi_score, cross_validate, held_out, pooled

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FIGURES = ("vi_split", "vi_merge", "vi_sum", "adapted_rand", "cremi_score")


def _curve(vi: dict, voxels: int = 100) -> dict:
    return {
        k: {
            "vi_split": v / 2,
            "vi_merge": v / 2,
            "vi_sum": v,
            "adapted_rand": v / 10,
            "voxels": voxels,
        }
        for k, v in vi.items()
    }


def test_held_out_choice_ignores_the_scored_curve():
    choose_on = _curve({0.3: 1.0, 0.5: 0.4, 0.7: 0.9})
    scored = _curve({0.3: 0.1, 0.5: 2.0, 0.7: 3.0})  # its own best is 0.3: never chosen
    rec = held_out(choose_on, scored)
    assert rec["setting"] == 0.5 and rec["vi_sum"] == 2.0
    assert rec["oracle_setting"] == 0.3 and rec["oracle_vi_sum"] == 0.1
    assert rec["cremi_score"] == pytest.approx(np.sqrt(2.0 * 0.2), abs=1e-4)


def test_pooling_weights_volumes_by_voxels_and_ties_take_the_lowest_setting():
    big = _curve({0.3: 1.0, 0.5: 0.0}, voxels=900)
    small = _curve({0.3: 0.0, 0.5: 5.0}, voxels=100)
    assert pooled([big, small])[0.5]["vi_sum"] == pytest.approx(0.5)
    assert choose([big, small]) == 0.5  # 0.5 < 0.9 (unweighted means would pick 0.3)
    assert choose(_curve({0.7: 1.0, 0.4: 1.0})) == 0.4
    mutex = _curve({(0.5, 0.3): 1.0, (0.3, 0.9): 0.2})
    assert choose(mutex) == (0.3, 0.9)


def test_cross_validation_scores_each_fold_at_the_other_folds_choice():
    a = _curve({0.3: 0.2, 0.5: 1.0, 0.7: 1.5})
    b = _curve({0.3: 1.2, 0.5: 0.9, 0.7: 0.3})
    cv = cross_validate({"a": a, "b": b})
    assert cv["folds"]["a"]["setting"] == 0.7 and cv["folds"]["a"]["vi_sum"] == 1.5
    assert cv["folds"]["b"]["setting"] == 0.3 and cv["folds"]["b"]["vi_sum"] == 1.2
    assert cv["folds"]["a"]["chosen_on"] == ["b"]
    assert cv["mean"]["vi_sum"] == pytest.approx(1.35)
    with pytest.raises(ValueError, match="two folds"):
        cross_validate({"a": a})
    assert cremi_score({"vi_sum": 4.0, "adapted_rand": 0.25}) == 1.0


def test_workflow_segmentations_are_scored_whole_and_on_the_unseen_sections(tmp_path):
    from benchmarks.accuracy_report import workflow_figures
    from pipeline.io.volume import create_volume

    rng = np.random.default_rng(0)
    gt = rng.integers(1, 4, (160, 8, 8)).astype(np.uint64)
    seg = gt.copy()
    seg[:130] = 1  # merged outside z 130-159, perfect inside
    urls = {}
    for name, data in (("gt", gt), ("seg", seg)):
        vol = create_volume(f"{tmp_path}/w.zarr/{name}", data.shape, data.dtype, (10, 10, 10))
        vol.write(vol.roi, data)
        urls[name] = vol.url
    summary = tmp_path / "s.json"
    outputs = {
        "ground_truth": urls["gt"],
        "segmentations": [{"threshold": 0.5, "corrected": False, "segmentation": urls["seg"]}],
    }
    summary.write_text(json.dumps({"outputs": outputs}))
    rec = workflow_figures(str(summary))["segmentations"][0]
    assert rec["z130_159"]["vi_sum"] == 0.0
    assert rec["whole"]["vi_merge"] > 0.5


def _tiny_affinity_model(path: Path) -> None:
    import torch

    from models.checkpoint import save_checkpoint
    from models.unet import UNet

    torch.manual_seed(0)
    offsets = [(-1, 0, 0), (0, -1, 0), (0, 0, -1), (-3, 0, 0), (0, -3, 0), (0, 0, -3)]
    net = UNet(
        ndim=3, encoder={"widths": (2, 4)}, out_channels=6, output="affinity", offsets=offsets
    )
    net.set_normalization(128.0, 33.0)
    net.eval()
    save_checkpoint(path, net)


def _setting(rec: dict):
    for first in ("bias_long", "fragments_threshold"):
        if first in rec:
            return [rec[first], rec["threshold"]]
    return rec["threshold"]


@pytest.mark.skipif(not (DATA / "gala_fib_example").exists(), reason="needs ../shared/data")
def test_bench_runs_end_to_end_on_a_small_crop(tmp_path, monkeypatch, capsys):
    from workflows.cli.app import main

    _tiny_affinity_model(tmp_path / "aff.pt")
    env = {
        "YX": "32",
        "CACHE": str(tmp_path / "cache"),
        "THRESHOLDS": "0.3,0.6,0.9",
        "BIASES": "0.5",
        "FRAGMENT_THRESHOLDS": "0.3,0.5",
        "BETAS": "0.3,0.6",
        "AFFINITY": str(tmp_path / "aff.pt"),
        "EDGE": "fib-edge-v1",
        "PNG": str(tmp_path / "curves.png"),
    }
    for k, v in env.items():
        monkeypatch.setenv(f"PETASEG_BENCH_ACCURACY_{k}", v)
    assert main(["bench", "accuracy", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    names = {
        "boundary-v1+mean",
        "affinity-v2+mean",
        "affinity-v2+learned",
        "affinity-v2+mutex",
        "waterz",
        "elf_multicut",
    }
    assert set(out["results"]) == names
    for kind in ("boundary", "affinity"):
        assert out["models"][kind]["flops_per_voxel"] > 0
        assert out["models"][kind]["infer_vps"] > 0
    assert Path(out["png"]).stat().st_size > 0
    for name in names:
        fib, gala = out["results"][name]["fib"], out["results"][name]["gala"]
        for rec in (fib, gala, *gala["folds"].values()):
            assert all(np.isfinite(rec[f]) for f in FIGURES)
        assert "threshold" in fib and fib["setting_chosen_on"]
        # chosen on z 0-99 alone: the lowest mean VI of the two (equal-sized) train parts
        curves = out["curves_vi_sum"][name]["fib"]
        train = {json.dumps(k): v for k, v in curves["train_a"]}
        for k, v in curves["train_b"]:
            train[json.dumps(k)] = (train[json.dumps(k)] + v) / 2
        best = min(train.items(), key=lambda kv: (kv[1], json.loads(kv[0])))[0]
        assert json.loads(best) == _setting(fib), name
        # gala: each half at the other half's best
        other = {"half_a": "half_b", "half_b": "half_a"}
        for half, rec in gala["folds"].items():
            pts = out["curves_vi_sum"][name]["gala"][other[half]]
            pick = min(pts, key=lambda kv: (kv[1], kv[0]))[0]
            assert pick == _setting(rec), (name, half)
