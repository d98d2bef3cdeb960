"""The compiled contingency tables and the cluster evaluation give today's figures exactly: the
tables equal those of the numpy version they replaced, the scores agree with scikit-image's
``variation_of_information`` and ``adapted_rand_error``, and scoring volumes on a Dask cluster
(block tables summed in a tree on the workers) equals scoring them in this process."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import adapted_rand_error, variation_of_information

from benchmarks.reference.contingency import numpy_contingency
from pipeline.evaluate import block_contingency, evaluate_arrays, evaluate_volumes
from pipeline.io.volume import create_volume
from tests.conftest import shared_file


def labels(rng, shape, n, dtype, runs=True):
    if runs:  # piecewise-constant along x, like real label volumes
        a = rng.integers(0, n, (*shape[:2], shape[2] // 4 + 1)).repeat(4, axis=2)[..., : shape[2]]
    else:
        a = rng.integers(0, n, shape)
    return a.astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint64, np.uint32, np.int64, np.uint8])
@pytest.mark.parametrize("runs", [True, False])
def test_block_tables_equal_the_numpy_version(dtype, runs):
    rng = np.random.default_rng(1)
    for n in (2, 40, 3000):
        seg = labels(rng, (9, 17, 31), n, dtype, runs)
        gt = labels(rng, (9, 17, 31), max(2, n // 3), dtype, runs)
        for ig, iseg in ((True, False), (False, False), (True, True)):
            got = block_contingency(seg, gt, ig, iseg)
            want = numpy_contingency(seg, gt, ig, iseg)
            for a, b in zip(got, want, strict=True):
                np.testing.assert_array_equal(a, b)
            assert got[0].dtype == got[1].dtype == np.uint64 and got[2].dtype == np.int64
    empty = block_contingency(np.ones((2, 2, 2), np.uint64), np.zeros((2, 2, 2), np.uint64))
    assert all(len(x) == 0 for x in empty)


@pytest.mark.parametrize("seed", range(4))
def test_scores_agree_with_scikit_image(seed):
    rng = np.random.default_rng(seed)
    gt = labels(rng, (8, 20, 24), 12, np.int64)
    seg = np.where(rng.random(gt.shape) < 0.2, rng.integers(1, 30, gt.shape), gt // 2 + 1)
    ours = evaluate_arrays(seg, gt, ignore_gt_zero=True)
    split, merge = variation_of_information(gt, seg, ignore_labels=[0])  # in bits
    assert ours["vi_split"] == pytest.approx(split, abs=1e-9)
    assert ours["vi_merge"] == pytest.approx(merge, abs=1e-9)
    are, _, _ = adapted_rand_error(gt, seg, ignore_labels=[0])
    assert ours["adapted_rand"] == pytest.approx(are, abs=1e-12)


def _volume(path: str, data: np.ndarray, chunks) -> str:
    vol = create_volume(path, data.shape, data.dtype, (1, 1, 1), chunks=chunks)
    vol.write(vol.roi, data)
    return vol.url


def test_cluster_scores_equal_local_scores(tmp_path, client):
    rng = np.random.default_rng(7)
    gt = labels(rng, (40, 48, 56), 60, np.uint64)
    seg = np.where(rng.random(gt.shape) < 0.05, 7, gt // 3).astype(np.uint64)
    s = _volume(str(tmp_path / "v.zarr/seg"), seg, (8, 16, 16))
    g = _volume(str(tmp_path / "v.zarr/gt"), gt, (8, 16, 16))
    whole = evaluate_arrays(seg, gt)
    # 5 x 3 x 4 = 60 blocks: several levels of the reduction tree
    on_cluster = evaluate_volumes(s, g, block_shape=(8, 16, 14), client=client)
    local = evaluate_volumes(s, g, block_shape=(8, 16, 14))
    assert on_cluster == local == whole


@pytest.mark.realdata
def test_cluster_scores_equal_local_scores_on_real_data(client):
    h5 = shared_file("gala_fib_example/gala_fib_train.h5")
    seg, gt = f"{h5}/volumes/labels/supervoxels", f"{h5}/volumes/labels/neuron_ids"
    on_cluster = evaluate_volumes(seg, gt, block_shape=(16, 32, 32), client=client)
    assert on_cluster == evaluate_volumes(seg, gt)
    assert round(on_cluster["vi_split"], 3) == 1.336 and round(on_cluster["vi_merge"], 3) == 0.121


def test_the_package_lists_its_api():
    import pipeline.evaluate

    assert all(getattr(pipeline.evaluate, n, None) is not None for n in pipeline.evaluate.__all__)
    assert {"Contingency", "evaluate_volumes", "scores_from_table"} <= set(
        pipeline.evaluate.__all__
    )
