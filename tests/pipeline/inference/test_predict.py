"""The predict stage: seam-free blockwise output, MONAI-equal blending, outputs, TTA, caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.unet import UNet
from pipeline.geometry import Roi
from pipeline.inference.engine import EngineConfig, PatchEngine
from pipeline.inference.patch_grid import AxisGrid, PatchGrid
from pipeline.io.volume import open_volume
from pipeline.stages.predict import (
    PREFETCH_GROUP,
    _gpu_workers,
    plan_predict,
    predict,
    predict_array,
)
from tests.conftest import shared_file
from tests.support.predict import tiny_net, write_input


@pytest.fixture(scope="module")
def synthetic_raw() -> np.ndarray:
    from pipeline.synthetic.volume import make_volume

    return make_volume((32, 48, 56), seed=3).raw


# --------------------------------------------------------------------------------------------
# the patch grid and window


def test_patch_grid_places_patches_like_monai_and_finds_overlaps():
    axis = AxisGrid.build(250, 64, 0.5)
    starts = [axis.start(k) for k in range(axis.count)]
    assert starts == [0, 32, 64, 96, 128, 160, 186]  # stride 32, last shifted to end at 250
    assert list(axis.overlapping(192, 250)) == [5, 6]
    assert axis.span(128, 192) == (96, 250)
    thin = AxisGrid.build(40, 48, 0.5)  # thinner than the patch: one centred patch
    assert (thin.count, thin.start(0)) == (1, -4)


def test_block_context_covers_every_patch_of_every_block():
    grid = PatchGrid.build((250, 100, 37), (64, 32, 16), 0.5)
    ctx = grid.context((128, 48, 16))
    for z in range(0, 250, 128):
        for y in range(0, 100, 48):
            write = Roi((z, y, 0), (128, 48, 16)).intersect(Roi((0, 0, 0), (250, 100, 37)))
            span = grid.span(write).intersect(Roi((0, 0, 0), (250, 100, 37)))
            assert write.grow(ctx).contains(span)
    assert ctx[0] >= 64 - 32  # at least patch - stride


# --------------------------------------------------------------------------------------------
# blockwise == whole volume


def _blockwise_equals_whole(tmp_path, client, raw, patch, blocks, chunks):
    net = tiny_net(1)
    whole = predict_array(net, raw, patch=patch, overlap=0.5, device="cpu")[0]
    url = write_input(str(tmp_path / "in.zarr" / "raw"), raw)
    for i, block in enumerate(blocks):
        out = str(tmp_path / "out.zarr" / f"b{i}")
        report = predict(
            net, url, out, client=client, progress=False, block=block, patch=patch,
            dtype="float32", chunks=chunks, device="cpu", batch_size=2,
        )  # fmt: skip
        assert report.blocks_run > 1
        got = open_volume(out).read()
        assert got.shape == raw.shape and got.dtype == np.float32
        assert np.abs(got - whole).max() <= 1e-5, block
    # the whole-volume pass is not trivial: it varies and sits in (0, 1)
    assert whole.std() > 1e-3 and 0 < whole.min() and whole.max() < 1


def test_blockwise_equals_whole_volume_on_synthetic_em(tmp_path, client, synthetic_raw):
    _blockwise_equals_whole(
        tmp_path, client, synthetic_raw, (16, 16, 16), [(16, 16, 24), (32, 32, 16)], (8, 8, 8)
    )


def test_blockwise_equals_whole_volume_on_real_fib_sem(tmp_path, client):
    import h5py

    path = shared_file("fib_medulla_flyem/fib_medulla_train.h5")
    with h5py.File(path, "r") as f:
        raw = f["volumes/raw"][40:88, 60:156, 100:196]  # 48 x 96 x 96
    _blockwise_equals_whole(
        tmp_path, client, raw, (16, 32, 32), [(16, 48, 48), (32, 32, 96)], (16, 16, 16)
    )


# --------------------------------------------------------------------------------------------
# outputs, TTA, planning


def test_uint8_and_float16_outputs_record_their_scale(tmp_path, client, synthetic_raw):
    net = tiny_net(2)
    raw = synthetic_raw[:16, :32, :32]
    url = write_input(str(tmp_path / "in.zarr" / "raw"), raw)
    ref = predict_array(net, raw, patch=(16, 16, 16), device="cpu")[0]
    for dtype, tol in [("uint8", 0.5 / 255 + 1e-6), ("float16", 1e-3)]:
        out = str(tmp_path / "out.zarr" / dtype)
        predict(
            net, url, out, client=client, progress=False, patch=(16, 16, 16), dtype=dtype,
            device="cpu", block=(16, 32, 32),
        )  # fmt: skip
        vol = open_volume(out)
        assert vol.dtype == np.dtype(dtype)
        attrs = vol.attrs
        decoded = vol.read().astype(np.float64) * attrs["value_scale"] + attrs["value_offset"]
        assert np.abs(decoded - ref).max() <= tol
        meta = attrs["petaseg"]
        assert meta["stage"] == "predict" and meta["petaseg_version"]
        assert meta["model"]["sha256"] and meta["params"]["patch"] == [16, 16, 16]
        assert meta["params"]["overlap"] == 0.5


def test_tta_averages_over_flips_and_transposes():
    """With TTA the prediction is equivariant: predicting a flipped/transposed volume gives the
    flipped/transposed prediction (the grid is symmetric when size = patch + k * stride)."""
    net = tiny_net(4)
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 255, (24, 24, 24), dtype=np.uint8)
    kw = dict(patch=(16, 16, 16), overlap=0.5, device="cpu", batch_size=4)
    plain = predict_array(net, raw, **kw)[0]
    tta = predict_array(net, raw, tta=True, **kw)[0]
    flipped = predict_array(net, np.ascontiguousarray(raw[::-1, :, ::-1]), tta=True, **kw)[0]
    transposed = predict_array(net, np.ascontiguousarray(raw.transpose(0, 2, 1)), tta=True, **kw)
    assert np.abs(flipped[::-1, :, ::-1] - tta).max() < 1e-5
    assert np.abs(transposed[0].transpose(0, 2, 1) - tta).max() < 1e-5
    assert np.abs(plain - tta).max() > 1e-3  # TTA changed something: a random net is not symmetric


def test_plan_asks_for_a_gpu_only_when_workers_have_one(tmp_path, synthetic_raw, monkeypatch):
    from distributed import Client, LocalCluster

    import pipeline.stages.predict as stage

    asked = []
    real_run = stage.run_blockwise
    monkeypatch.setattr(
        stage,
        "run_blockwise",
        lambda task, **kw: asked.append(task.resources) or real_run(task, **kw),
    )

    net = tiny_net()
    url = write_input(str(tmp_path / "in.zarr" / "raw"), synthetic_raw[:16, :32, :32])
    task = plan_predict(net, url, str(tmp_path / "o.zarr" / "a"), patch=(16, 16, 16))
    assert task.resources is None and task.blocks_per_task == PREFETCH_GROUP
    assert open_volume(str(tmp_path / "o.zarr" / "a")).dtype == np.uint8
    # workers that advertise a GPU get GPU tasks, which still run where CUDA is absent (CPU)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
            resources={"GPU": 1},
        ) as lc,
        Client(lc) as c,
    ):  # fmt: skip
        assert _gpu_workers(c)
        out = str(tmp_path / "o.zarr" / "b")
        report = predict(
            net, url, out, client=c, progress=False, patch=(16, 16, 16), dtype="float32"
        )
        assert report.blocks_run == 1
    assert asked == [{"GPU": 1}]  # the block task carried the resource to the GPU worker
    ref = predict_array(net, synthetic_raw[:16, :32, :32], patch=(16, 16, 16))[0]
    assert np.abs(open_volume(out).read() - ref).max() <= 1e-5


FORWARD_THREADS: list[int] = []


class ThreadProbe(UNet):
    """Records torch's thread count at each forward pass (in-process workers share the list)."""

    def forward(self, x):
        FORWARD_THREADS.append(torch.get_num_threads())
        return super().forward(x)


def test_model_is_built_once_per_worker_and_uses_the_worker_threads(tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    from pipeline.inference import network
    from pipeline.runner import cache as worker_cache

    loads = []
    original = network.ModelSource._load

    def counting(self):
        loads.append(1)
        return original(self)

    monkeypatch.setattr(network.ModelSource, "_load", counting)
    worker_cache.clear()
    torch.manual_seed(0)
    net = ThreadProbe(encoder={"widths": (4, 8), "norm": None}).eval()
    raw = np.random.default_rng(1).integers(0, 255, (32, 32, 32), dtype=np.uint8)
    url = write_input(str(tmp_path / "in.zarr" / "raw"), raw)
    FORWARD_THREADS.clear()
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as lc,
        Client(lc) as c,
    ):
        report = predict(
            net, url, str(tmp_path / "o.zarr" / "p"), client=c, progress=False,
            patch=(16, 16, 16), block=(16, 16, 16), chunks=(16, 16, 16), device="cpu",
        )  # fmt: skip
    assert report.blocks_run == 8
    assert len(loads) == 1  # 8 blocks, one network build
    assert FORWARD_THREADS and set(FORWARD_THREADS) == {1}  # the worker has one thread
    worker_cache.clear()


def test_engine_batches_do_not_change_the_result():
    net = tiny_net(5)
    raw = np.random.default_rng(2).integers(0, 255, (20, 30, 26), dtype=np.uint8)
    a = predict_array(net, raw, patch=(8, 16, 16), batch_size=1, device="cpu")
    b = predict_array(net, raw, patch=(8, 16, 16), batch_size=7, channels_last=False)
    assert np.abs(a - b).max() < 1e-5


def test_engine_reads_the_input_once_per_block():
    net = tiny_net(6)
    raw = np.random.default_rng(3).integers(0, 255, (40, 40, 40), dtype=np.uint8)
    engine = PatchEngine(net, EngineConfig((16, 16, 16), 0.5, 4), 1, 1, 128.0, 40.0)
    reads = []

    def read(roi: Roi) -> np.ndarray:
        reads.append(roi)
        return raw[roi.to_slices()]

    write = Roi((16, 16, 16), (16, 16, 16))
    engine.predict(read, raw.shape, write)
    assert reads == [Roi((8, 8, 8), (32, 32, 32))]  # the 3x3x3 patches around the block


def test_batch_norms_fold_into_convolutions_without_changing_the_output():
    import copy

    from pipeline.inference.fuse import fold_batch_norms

    torch.manual_seed(0)
    net = UNet(encoder={"widths": (4, 8), "norm": "batch"}).eval()
    for m in net.modules():  # give the norms non-trivial statistics, as after training
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    folded = copy.deepcopy(net)
    assert fold_batch_norms(folded) == 6  # 3 blocks x 2 convolutions
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in folded.modules())
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.inference_mode():
        assert (net(x) - folded(x)).abs().max() < 1e-4
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(UNet(encoder={"widths": (4, 8)}).train())


def test_weights_are_normalised_slab_by_slab_in_any_z_layout():
    """The z-sliding weight buffer gives the same result as a whole-ROI one, also when the
    patch is thicker than the volume and when write ROIs start between patch starts."""
    net = tiny_net(8)
    raw = np.random.default_rng(4).integers(0, 255, (20, 24, 24), dtype=np.uint8)
    engine = PatchEngine(net, EngineConfig((8, 16, 16), 0.75, 3), 1, 1, 128.0, 40.0)
    read = lambda roi: raw[roi.to_slices()]  # noqa: E731
    whole = engine.predict(read, raw.shape, Roi((0, 0, 0), raw.shape))
    for z0, z1 in [(0, 7), (3, 20), (5, 6)]:
        part = engine.predict(read, raw.shape, Roi((z0, 0, 0), (z1 - z0, 24, 24)))
        assert np.abs(part - whole[:, z0:z1]).max() < 1e-6
    thick = PatchEngine(net, EngineConfig((32, 16, 16), 0.5, 2), 1, 1, 128.0, 40.0)
    w = thick.predict(read, raw.shape, Roi((0, 0, 0), raw.shape))
    assert (
        np.abs(thick.predict(read, raw.shape, Roi((4, 8, 0), (9, 8, 24))) - w[:, 4:13, 8:16]).max()
        < 1e-6
    )
