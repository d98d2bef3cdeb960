"""Affinities through the stages: a tiny affinity network (a known function of the raw, with a
long-range offset) predicts synthetic cells, the predict stage stores uint8 channels and the
offsets, both fragment methods run on them, and the region graph's per-edge statistics are
exactly 1 - the affinities on the contact's faces (numpy, independently); block sizes do not
change the stitched segmentation."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.evaluate import evaluate_arrays
from pipeline.io.tables import iter_block_tables, read_graph_meta
from pipeline.io.volume import create_volume, open_volume
from pipeline.stages.agglomerate import run_agglomerate
from pipeline.stages.fragments import run_fragments
from pipeline.stages.graph import run_graph
from pipeline.stages.predict import predict
from pipeline.stages.relabel import run_relabel
from pipeline.stages.segment import run_segment
from tests.support.affinity_faces import BrightPairs, reference_faces
from tests.support.labels import voronoi
from workflows.cli.app import main

SHAPE = (24, 48, 48)
BLOCK = (12, 24, 24)
OFFSETS = [[-1, 0, 0], [0, -1, 0], [0, 0, -1], [-2, -4, -4]]
METHODS = ("watershed", "affinity_watershed")


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, client):
    d = tmp_path_factory.mktemp("affrt")
    labels, _ = voronoi(SHAPE, 12, seed=2)
    rng = np.random.default_rng(0)
    raw = np.where(labels > 0, 190.0, 60.0) + rng.normal(0, 12, SHAPE)
    raw_vol = create_volume(str(d / "in.zarr/raw"), SHAPE, np.uint8, (8, 8, 8), chunks=BLOCK)
    raw_vol.write(raw_vol.roi, np.clip(raw, 0, 255).astype(np.uint8))
    url = str(d / "in.zarr/affs")
    predict(BrightPairs(OFFSETS), raw_vol.url, url, patch=(16, 16, 16), client=client)
    return d, labels, url


def _edges(root: str) -> dict[tuple[int, int], tuple[int, float]]:
    """The graph's edges summed over its block tables."""
    out: dict[tuple[int, int], tuple[int, float]] = {}
    n = read_graph_meta(root)["num_blocks"]
    for _, t in iter_block_tables(root, "graph/edges", n, ["u", "v", "count", "sum"]):
        for u, v, c, s in zip(t["u"], t["v"], t["count"], t["sum"], strict=True):
            c0, s0 = out.get((int(u), int(v)), (0, 0.0))
            out[(int(u), int(v))] = (c0 + int(c), s0 + float(s))
    return out


def _segment(d, frag: str, affs: str, client, name: str, faces: str = "auto") -> np.ndarray:
    root = str(d / f"{name}_tables")
    run_graph(frag, affs, root, client=client, progress=False, faces=faces)
    run_agglomerate(root, client=client, progress=False)
    (summary,) = run_segment(root, [0.5])
    out = str(d / f"out.zarr/{name}")
    run_relabel(frag, summary["lut"], out, client=client, progress=False)
    return open_volume(out).read()


def test_predict_stores_uint8_affinity_channels_with_offsets(predicted):
    _, labels, url = predicted
    vol = open_volume(url)
    assert vol.dtype == np.uint8 and vol.channels == len(OFFSETS)
    assert vol.attrs["offsets"] == OFFSETS
    affs = vol.read()
    inside = (labels[1:] > 0) & (labels[1:] == labels[:-1])  # z faces inside a cell
    assert affs[0, 1:][inside].mean() > 200 and affs[0][labels == 0].mean() < 60


@pytest.mark.parametrize("method", METHODS)
def test_graph_means_are_one_minus_the_face_affinities(predicted, client, method):
    d, labels, url = predicted
    frag_url = str(d / f"out.zarr/{method}_fragments")
    run_fragments(url, frag_url, block_shape=BLOCK, client=client, progress=False, method=method)
    frag = open_volume(frag_url).read()
    assert len(np.unique(frag)) > 10
    root = str(d / f"{method}_graph")
    run_graph(frag_url, url, root, client=client, progress=False)
    assert read_graph_meta(root)["faces"] == "affinity"
    affs = open_volume(url).read().astype(np.float32) / 255.0
    want = {k: v for k, v in reference_faces(frag, affs, OFFSETS).items() if k[0] != 0}
    got = _edges(root)
    assert got.keys() == want.keys()
    for k, (count, total) in want.items():
        assert got[k][0] == count
        assert got[k][1] / got[k][0] == pytest.approx(total / count, abs=1e-6)
    seg = _segment(d, frag_url, url, client, f"{method}_seg")
    assert evaluate_arrays(seg, labels)["vi_sum"] < 0.3


def test_block_size_does_not_change_affinity_segmentations(predicted, client):
    d, labels, url = predicted
    for faces in ("affinity", "boundary"):
        segs = []
        for name, block in (("whole", SHAPE), ("blocks", (8, 16, 24))):
            frag = str(d / f"out.zarr/aw_{faces}_{name}")
            run_fragments(url, frag, block_shape=block, client=client, progress=False,
                          method="affinity_watershed")  # fmt: skip
            segs.append(_segment(d, frag, url, client, f"aw_{faces}_{name}_seg", faces))
        assert evaluate_arrays(segs[1], np.where(labels > 0, segs[0], 0))["vi_sum"] < 0.05


def test_affinity_methods_refuse_boundary_maps(predicted, tmp_path, capsys):
    _, _, url = predicted
    vol = create_volume(str(tmp_path / "b.zarr/boundary"), (8, 8, 8), np.float32, (4, 4, 4))
    vol.write(vol.roi, np.zeros((8, 8, 8), np.float32))
    with pytest.raises(InputError, match="affinity_watershed needs affinities"):
        run_fragments(vol.url, str(tmp_path / "b.zarr/f"), method="affinity_watershed")
    argv = ["segment", "--boundaries", vol.url, "--output", str(tmp_path / "b.zarr/s")]
    assert main([*argv, "--method", "affinity_watershed", "--cluster", "threads:1"]) == 2
    assert "affinity_watershed needs affinities" in capsys.readouterr().err
    argv = ["segment", "--boundaries", url, "--output", str(tmp_path / "c.zarr/s")]
    assert main([*argv, "--faces", "edges", "--cluster", "threads:1"]) == 2
    assert "--faces" in capsys.readouterr().err


def test_segment_command_takes_the_affinity_watershed(predicted, tmp_path):
    _, labels, url = predicted
    out = str(tmp_path / "a.zarr/seg")
    argv = ["segment", "--boundaries", url, "--output", out, "--method", "affinity_watershed"]
    assert main([*argv, "--block", "12,24,24", "--cluster", "threads:1", "--threshold", "0.5"]) == 0
    frag = open_volume(f"{out}_fragments")
    assert frag.attrs["petaseg"]["params"]["method"] == "affinity_watershed"
    assert evaluate_arrays(open_volume(out).read(), labels)["vi_sum"] < 0.3


def test_runs_hash_as_before_the_affinity_options():
    from workflows.schema import FragmentsStage, GraphStage

    assert GraphStage().hashed() == {"bins": 32}  # earlier graph steps resume
    assert GraphStage(faces="boundary").hashed() == {"bins": 32, "faces": "boundary"}
    aw = FragmentsStage(method="affinity_watershed").hashed()
    assert aw["method"] == "affinity_watershed" and "sigma_seeds" in aw and "bias_long" not in aw
    assert "method" not in FragmentsStage().hashed()
