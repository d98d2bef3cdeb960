"""Learned agglomeration through the stages on a synthetic volume: train an edge model from the
region graph and ground truth, agglomerate with it in one block and in small blocks (two-level),
and compare; the model file round-trips; bad model files are refused."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.correct.truth import FragmentTruth
from pipeline.errors import InputError
from pipeline.evaluate import evaluate_arrays
from pipeline.io.volume import create_volume, open_volume
from pipeline.seg.edge_features import N_FEATURES
from pipeline.seg.watershed import FragmentParams
from pipeline.stages.agglomerate import run_agglomerate
from pipeline.stages.learned_model import load_edge_model, save_edge_model, train_edge_model
from tests.support.labels import voronoi
from tests.support.segmenting import segment
from workflows.cli.app import main

SHAPE = (32, 48, 48)
PARAMS = FragmentParams(sigma_seeds=0.0, min_size=10)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, client):
    """A boundary map with noise, its mean segmentation, and an edge model trained on it."""
    d = tmp_path_factory.mktemp("learned")
    lab, bnd = voronoi(SHAPE, 14, seed=11)
    rng = np.random.default_rng(0)
    bnd = np.clip(bnd + rng.normal(0, 0.15, SHAPE), 0, 1).astype(np.float32)
    vol = create_volume(str(d / "in.zarr/boundary"), SHAPE, "float32", (4, 4, 4), chunks=(16,) * 3)
    vol.write(vol.roi, bnd)
    out = str(d / "train.zarr/seg")
    result = segment(vol.url, out, [0.5], PARAMS, (16, 16, 16), (8, 8, 8), client=client)
    frag = open_volume(result["fragments_url"]).read()
    truth = FragmentTruth.from_arrays(frag, lab)
    model = train_edge_model([(result["tables"], (truth.fragment, truth.gt, truth.count))])
    path = str(d / "edges.parquet")
    save_edge_model(model, path)
    return d, lab, vol.url, path, model


def test_model_file_round_trips(trained):
    _, _, _, path, model = trained
    again = load_edge_model(path)
    assert again.threshold == model.threshold and 0 < model.threshold < 1
    x = np.random.default_rng(1).random((500, N_FEATURES))
    np.testing.assert_array_equal(again.ensemble.predict_proba(x), model.ensemble.predict_proba(x))


def test_learned_agglomeration_is_block_size_independent(trained, client):
    d, lab, url, path, model = trained
    t = model.threshold
    one = segment(
        url, str(d / "one.zarr/seg"), [t], PARAMS, SHAPE, (8, 8, 8), client=client,
        scoring=f"learned:{path}",
    )  # fmt: skip
    small = segment(
        url, str(d / "small.zarr/seg"), [t], PARAMS, (16, 16, 16), (8, 8, 8), client=client,
        scoring=f"learned:{path}", max_global_edges=0, local_threshold=0.3,
    )  # fmt: skip
    assert one["agglomerate"]["scheme"] == "global"
    assert small["agglomerate"]["scheme"] == "two-level"
    assert small["agglomerate"]["clusters_after_local"] < small["agglomerate"]["fragments"]
    seg1 = open_volume(one["segmentations"][0]["segmentation"]).read()
    seg2 = open_volume(small["segmentations"][0]["segmentation"]).read()
    assert evaluate_arrays(seg2, seg1, ignore_gt_zero=False)["vi_sum"] < 0.05
    # and it segments: the learned cut recovers the cells from over-segmented fragments
    frag = open_volume(one["fragments_url"]).read()
    assert evaluate_arrays(frag, lab)["vi_split"] > 0.3
    assert evaluate_arrays(seg1, lab)["vi_sum"] < 0.25


def test_missing_or_foreign_model_is_refused(trained, tmp_path):
    d, _, _, _, _ = trained
    tables = str(d / "train.zarr.tables/seg")
    with pytest.raises(InputError, match="train agglomeration"):
        run_agglomerate(tables, f"learned:{tmp_path / 'none.parquet'}", progress=False)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="not a petaseg edge model"):
        run_agglomerate(tables, f"learned:{bad}", progress=False)


def test_segment_refuses_a_missing_model_before_any_fragment(trained, tmp_path, capsys):
    _, _, url, _, _ = trained
    out = tmp_path / "m.zarr"
    argv = ["segment", "--boundaries", url, "--output", str(out / "seg")]
    assert main([*argv, "--scoring", "learned:no-such-model", "--cluster", "threads:1"]) == 2
    assert "no edge model at no-such-model" in capsys.readouterr().err
    assert not (out / "seg_fragments").exists()  # refused before the fragments step


def test_train_agglomeration_command(trained, tmp_path, capsys):
    d, _, _, _, _ = trained
    args = [
        "train", "agglomeration",
        "--tables", str(d / "train.zarr.tables/seg"),
        "--fragments", str(d / "train.zarr/seg_fragments"),
        "--labels", str(d / "labels.zarr/ids"),
        "--out", str(tmp_path / "m.parquet"), "--json",
    ]  # fmt: skip
    lab, _ = voronoi(SHAPE, 14, seed=11)
    gt = create_volume(args[7], SHAPE, "uint64", (4, 4, 4), chunks=(16,) * 3)
    gt.write(gt.roi, lab.astype(np.uint64))
    assert main(args) == 0
    assert 0 < load_edge_model(str(tmp_path / "m.parquet")).threshold < 1
    capsys.readouterr()
    assert main(args) == 2  # --out exists: refused, nothing overwritten
    assert "exists" in capsys.readouterr().err
    two_graphs = [*args[:8], "--tables", args[3], "--out", str(tmp_path / "n.parquet")]
    assert main(two_graphs) == 2  # two graphs, one set of fragments and labels
    assert "one --fragments and one --labels per --tables" in capsys.readouterr().err


def test_shipped_edge_model_loads_by_name():
    from pipeline.stages.learned_model import edge_model, model_file

    assert model_file("fib-edge-v1").endswith("models/zoo/fib-edge-v1.parquet")
    model = edge_model("fib-edge-v1")
    assert model.info["threshold_chosen_on"] == "cross-validated over 2 graphs"
    assert model.threshold == 0.5
    p = model.ensemble.predict_proba(model.x)
    # the trees separate the training examples far better than chance
    assert p[model.y == 1].mean() > p[model.y == 0].mean() + 0.3
