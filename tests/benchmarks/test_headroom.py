"""The headroom experiment of issue 15: the oracle agglomeration of fragments has exact VI on a
hand-made case, a ground-truth boundary map is the training target at 0.95 / 0.05 and leaves
fragments that never cross a neuron boundary, and the experiment runs end to end on a small
crop of the real FIB volume with the perfect map ahead of the network's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.headroom_experiment import truth_boundary_map
from pipeline.correct.truth import FragmentTruth

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_oracle_agglomeration_joins_each_fragment_to_its_majority_neuron():
    fragments = np.array([[[1, 1, 2, 2], [3, 3, 3, 3], [4, 4, 4, 4]]], np.uint64)
    gt = np.array([[[5, 5, 5, 5], [5, 6, 6, 6], [0, 0, 0, 0]]], np.uint64)  # 0: unlabeled
    scores = FragmentTruth.from_arrays(fragments, gt).majority_oracle()
    # segments {1, 2} -> neuron 5 (4 voxels of 5) and {3} -> neuron 6 (1 voxel of 5, 3 of 6);
    # fragment 4 holds unlabeled voxels only and does not count
    h = lambda *p: -sum(q * np.log2(q) for q in p)  # noqa: E731
    assert scores["vi_split"] == pytest.approx(5 / 8 * h(4 / 5, 1 / 5))
    assert scores["vi_merge"] == pytest.approx(4 / 8 * h(1 / 4, 3 / 4))
    over_segmented = FragmentTruth.from_arrays(np.arange(12, dtype=np.uint64).reshape(1, 3, 4), gt)
    assert over_segmented.majority_oracle()["vi_sum"] == 0.0


def test_truth_map_marks_both_sides_of_every_contact():
    labels = np.ones((4, 6, 6), np.uint64)
    labels[:, :, 3:] = 2
    m = truth_boundary_map(labels)
    assert m.dtype == np.uint8
    assert set(np.unique(m[:, :, 2:4])) == {round(0.95 * 255)}
    assert set(np.unique(m[:, :, [0, 1, 4, 5]])) == {round(0.05 * 255)}


@pytest.mark.skipif(not (DATA / "fib_medulla_flyem").exists(), reason="needs ../shared/data")
def test_headroom_runs_on_a_small_crop(tmp_path, monkeypatch, capsys):
    from benchmarks.headroom_experiment import main

    monkeypatch.setenv("PETASEG_BENCH_ACCURACY_YX", "32")
    monkeypatch.setenv("PETASEG_BENCH_ACCURACY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PETASEG_BENCH_ACCURACY_THRESHOLDS", "0.3,0.5,0.8")
    main(["--sigma-seeds", "1,2"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["part"] == "FIB z 130-159"
    rows = {(r["map"], r["sigma_seeds"]): r for r in out["rows"]}
    assert len(rows) == 4
    for (name, seeds), row in rows.items():
        oracle = row["oracle_agglomeration"]["vi_sum"]
        assert row["fragments"] > 1
        assert 0 <= oracle <= row["mean_best_on_scored_part"]["vi_sum"] + 1e-9
        assert row["mean_at_0.5"]["threshold"] == 0.5
        if name == "ground-truth boundaries":  # a perfect map: fragments far closer to the truth
            network = next(r for (n, s), r in rows.items() if s == seeds and n != name)
            assert oracle < 0.6 * network["oracle_agglomeration"]["vi_sum"]


@pytest.mark.skipif(not (DATA / "fib_medulla_flyem").exists(), reason="needs ../shared/data")
def test_headroom_of_an_affinity_model_uses_true_affinities(tmp_path, monkeypatch, capsys):
    """For an affinity model the perfect map holds the ground truth's affinities at the model's
    offsets: fragments over its faces cross no neuron boundary at all."""
    from benchmarks.headroom_experiment import main
    from pipeline.io.volume import open_volume
    from tests.benchmarks.test_bench_accuracy import _tiny_affinity_model

    _tiny_affinity_model(tmp_path / "aff.pt")
    monkeypatch.setenv("PETASEG_BENCH_ACCURACY_YX", "32")
    monkeypatch.setenv("PETASEG_BENCH_ACCURACY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PETASEG_BENCH_ACCURACY_THRESHOLDS", "0.1,0.5")
    args = ["--model", str(tmp_path / "aff.pt"), "--method", "affinity_watershed"]
    main([*args, "--sigma-seeds", "1", "--fragment-threshold", "0.2"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["method"] == "affinity_watershed" and out["fragment_threshold"] == 0.2
    truth = next(r for r in out["rows"] if r["map"] == "ground truth")
    assert truth["oracle_agglomeration"]["vi_sum"] < 0.05
    maps = list((tmp_path / "cache").rglob("truth-map/*-fib-test.zarr"))
    assert len(maps) == 1 and open_volume(str(maps[0] / "pred")).channels == 6
