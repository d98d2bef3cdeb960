"""The correct stage end to end on synthetic volumes (runs everywhere): a model trained on one
volume corrects another, every automatic change is an undoable edit in the edit log, the rest is
a ranked JSON list that exports as a point annotation layer; the model file round-trips; the
commands work; bad input is refused clearly. Real-data quality: test_correct_realdata.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.correct_experiment import Part, evaluate
from pipeline.correct.classifier import ErrorModel
from pipeline.correct.train import label, train_model
from pipeline.correct.truth import FragmentTruth
from pipeline.errors import InputError
from pipeline.export.objects import ObjectParams
from pipeline.export.precomputed import export
from pipeline.lut import Lut, lut_bytes
from pipeline.proofread.editlog import EditLog
from tests.support.export_data import segmentation_with_errors, write_zarr
from workflows.cli.app import main

pytest.importorskip(
    "sklearn", reason="scikit-learn is not installed (pip install scikit-learn==1.9.1)"
)
CHUNKS = (20, 32, 32)


def _case(tmp, name, seed, client):
    from pipeline.stages.agglomerate import run_agglomerate
    from pipeline.stages.graph import run_graph

    neurons, fragments, boundary, raw, f_ids, seg = segmentation_with_errors(seed)
    base = tmp / f"{name}.zarr"
    frag_url = write_zarr(base / "fragments", fragments, chunks=CHUNKS)
    bnd_url = write_zarr(base / "boundary", boundary, chunks=CHUNKS)
    raw_url = write_zarr(base / "raw", raw, chunks=CHUNKS)
    gt_url = write_zarr(base / "gt", neurons, chunks=CHUNKS)
    root = str(tmp / f"{name}.tables")
    run_graph(frag_url, bnd_url, root, block_shape=CHUNKS, client=client, progress=False)
    run_agglomerate(root, "mean", client=client, progress=False)
    from pipeline.correct.features import run_features

    run_features(frag_url, raw_url, bnd_url, root, client=client, progress=False)
    truth = FragmentTruth.from_arrays(fragments, neurons)
    part = Part(name, root, frag_url, raw_url, bnd_url, truth, [])
    return part, Lut.from_arrays(f_ids, seg), gt_url


@pytest.fixture(scope="module")
def setup(tmp_path_factory, request):
    client = request.getfixturevalue("client")
    tmp = tmp_path_factory.mktemp("correct")
    train_part, train_lut, train_gt = _case(tmp, "a", 1, client)
    eval_part, eval_lut, _ = _case(tmp, "b", 2, client)
    model = train_model([label(train_part.tables(), train_lut, train_part.truth)], {"case": "a"})
    return {
        "tmp": tmp,
        "client": client,
        "train": (train_part, train_lut, train_gt),
        "eval": (eval_part, eval_lut),
        "model": model,
    }


@pytest.fixture(scope="module")
def corrected(setup):
    """The eval volume corrected by the model trained on the other one: the result, the edit
    log's head right after (later tests may add edits) and the candidates file."""
    part, lut = setup["eval"]
    tmp = setup["tmp"]
    r = evaluate(
        setup["model"],
        part,
        lut,
        str(tmp / "b.edits.sqlite"),
        str(tmp / "b.json"),
        client=setup["client"],
    )
    with EditLog(tmp / "b.edits.sqlite") as log:
        head = log.head
    return {"result": r, "head": head, "log": tmp / "b.edits.sqlite", "json": tmp / "b.json"}


def test_auto_correction_on_an_unseen_volume_is_logged_and_lowers_vi(setup, corrected):
    part, lut = setup["eval"]
    tmp = setup["tmp"]
    r = corrected["result"]
    assert r["vi_after"] < r["vi_before"] - 0.1, r
    assert r["applied"]["merges"] + r["applied"]["splits"] > 0
    with EditLog(tmp / "b.edits.sqlite") as log:
        edits = log.log()
        assert len(edits) == r["applied"]["merges"] + r["applied"]["splits"]
        assert {e["author"] for e in edits} == {"petaseg-correct"}
        assert all(e["reason"].startswith("auto: ") and "p=" in e["reason"] for e in edits)
        # version 0 is the uncorrected table; undoing the last auto edit works like any edit
        np.testing.assert_array_equal(log.lut(0).segment, lut.segment)
        head = log.head
        log.undo(author="reviewer")
        np.testing.assert_array_equal(log.lut().segment, log.lut(head - 1).segment)
    data = json.loads((tmp / "b.json").read_text())
    ranks = [c["rank"] for c in data["candidates"]]
    scores = [c["score"] for c in data["candidates"]]
    assert ranks == list(range(1, len(ranks) + 1)) and scores == sorted(scores, reverse=True)
    extent = np.array(part.tables().shape) * 10
    for c in data["candidates"]:
        assert c["error"] in ("split_error", "merge_error")
        assert all(0 <= p <= e for p, e in zip(c["point_nm"], extent, strict=True))


def test_candidates_export_as_point_annotations(setup, corrected):
    part, _ = setup["eval"]
    tmp = setup["tmp"]
    with EditLog(corrected["log"]) as log:
        log.export(str(tmp / "b.head_lut"), corrected["head"])
    export(
        str(tmp / "b.ng"),
        image_url=part.raw_url,
        segmentation_url=part.fragments_url,
        lut=str(tmp / "b.head_lut"),
        candidates=str(corrected["json"]),
        levels=1,
        objects=ObjectParams(meshes=False, skeletons=False),
        client=setup["client"],
        progress=False,
    )
    info = json.loads((tmp / "b.ng" / "annotations" / "info").read_text())
    n = len(json.loads(corrected["json"].read_text())["candidates"])
    assert info["annotation_type"] == "point" and info["spatial"][0]["limit"] == n
    state = json.loads((tmp / "b.ng" / "viewer_state.json").read_text())["state"]
    assert [layer["type"] for layer in state["layers"]] == ["image", "segmentation", "annotation"]


def test_model_file_round_trip_predicts_the_same(setup, tmp_path):
    model = setup["model"]
    path = str(tmp_path / "m.parquet")
    model.save(path)
    again = ErrorModel.load(path)
    assert again.thresholds == model.thresholds and again.info["case"] == "a"
    x = model.examples["pair"][0]
    np.testing.assert_allclose(again.predict("pair", x), model.predict("pair", x))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="not a petaseg correction model"):
        ErrorModel.load(str(tmp_path / "bad.parquet"))
    with pytest.raises(InputError, match="no correction model"):
        ErrorModel.load(str(tmp_path / "none.parquet"))


def test_commands_train_and_correct(setup, tmp_path, capsys):
    train_part, train_lut, train_gt = setup["train"]
    part, lut = setup["eval"]
    (tmp_path / "a.parquet").write_bytes(lut_bytes(train_lut))
    (tmp_path / "b.parquet").write_bytes(lut_bytes(lut))
    model = str(tmp_path / "model.parquet")
    common = ["--fragments", train_part.fragments_url, "--raw", train_part.raw_url]
    common += ["--boundaries", train_part.boundary_url, "--cluster", "threads:1"]
    args = ["correct-train", "--tables", train_part.root, *common, "--gt", train_gt]
    assert main([*args, "--lut", str(tmp_path / "a.parquet"), "--model", model, "--json"]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(trained["thresholds"]) == {"pair", "split"}
    args = ["correct", "--tables", part.root, "--fragments", part.fragments_url]
    args += ["--raw", part.raw_url, "--boundaries", part.boundary_url, "--model", model]
    args += ["--log", str(tmp_path / "e.sqlite"), "--out", str(tmp_path / "c.json")]
    assert (
        main([*args, "--lut", str(tmp_path / "b.parquet"), "--cluster", "threads:1", "--json"]) == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["version_after"] > summary["version_before"] == 0
    assert (tmp_path / "c.json").exists()
    # a new log needs the table to start from
    args[args.index("--log") + 1] = str(tmp_path / "other.sqlite")
    assert main([*args, "--cluster", "threads:1"]) == 2
    assert "give the lookup table" in capsys.readouterr().err


def test_volumes_of_another_grid_are_refused(setup, tmp_path):
    from pipeline.correct.features import run_features

    part, _ = setup["eval"]
    small = write_zarr(tmp_path / "s.zarr" / "raw", np.zeros((8, 8, 8), np.uint8))
    with pytest.raises(InputError, match="raw image .* does not match the fragments"):
        run_features(part.fragments_url, small, part.boundary_url, part.root, progress=False)
