"""2D EM data: class maps, instances and boxes from labels, localization crops, file reading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import InputError
from models.train2d.batches import augment_crop, detection_batch
from models.train2d.data import (
    InstanceSections,
    fib_instances,
    instance_targets,
    instances_from_ids,
    instances_from_mask,
    isbi_classes,
    localization_crops,
    vnc_classes,
    vnc_instances,
)
from tests.conftest import shared_file


def test_label_values_to_classes():
    assert isbi_classes(np.array([[0, 255]], np.uint8)).tolist() == [[1, 0]]
    with pytest.raises(InputError, match="0 .membrane. or 255"):
        isbi_classes(np.array([[0, 7]], np.uint8))
    merged = np.array([[0, 32, 64, 96, 128, 159, 191, 223, 255]], np.uint8)
    # membrane (all orientations + junction), glia, mitochondria, synapse, cytoplasm
    assert vnc_classes(merged).tolist() == [[0, 0, 0, 0, 0, 3, 1, 2, 4]]
    with pytest.raises(InputError, match="unknown values"):
        vnc_classes(np.array([[5]], np.uint8))


def test_components_boxes_use_pixel_edges():
    mask = np.zeros((6, 8), bool)
    mask[1, 2] = True  # a one-pixel object
    mask[3:5, 4:7] = True
    inst = instances_from_mask(mask)
    assert inst.max() == 2
    t = instance_targets(inst, np.array([0, 1, 2]))
    boxes = t["boxes"].tolist()
    assert [2.0, 1.0, 3.0, 2.0] in boxes and [4.0, 3.0, 7.0, 5.0] in boxes  # never degenerate
    assert t["masks"].shape == (2, 6, 8) and t["masks"].sum().item() == 7
    assert instances_from_mask(mask, min_area=2).max() == 1  # the single pixel is dropped


def test_one_neuron_id_crossing_twice_gives_two_profiles():
    ids = np.array([[5, 5, 9, 5], [9, 9, 9, 5], [0, 0, 9, 5]], np.uint64)
    inst = instances_from_ids(ids)
    assert inst.max() == 3  # id 5 in two pieces (4-connectivity), id 9 once; 0 stays background
    assert (inst[ids == 0] == 0).all()
    data = fib_instances(np.zeros((1, *ids.shape), np.uint8), ids[None], min_area=1)
    assert data.classes[0].tolist() == [0, 1, 1, 1]


def test_vnc_instances_and_empty_tiles():
    cmap = np.full((1, 40, 40), 4, np.uint8)
    cmap[0, 5:15, 5:15] = 1  # a mitochondrion
    cmap[0, 30:33, 20:30] = 2  # a synapse
    data = vnc_instances(np.zeros_like(cmap), cmap, min_area=5)
    assert sorted(data.classes[0].tolist()) == [0, 1, 2]
    empty = InstanceSections(
        np.zeros((1, 32, 32), np.uint8), np.zeros((1, 32, 32), np.int32), [np.array([0])], ("x",)
    )
    images, targets = detection_batch(empty, 32, 2, np.random.default_rng(0))
    assert targets[0]["boxes"].shape == (0, 4) and targets[0]["labels"].dtype == torch.int64


def test_localization_crops_hold_one_object_and_augmentation_moves_the_box():
    cmap = np.full((1, 128, 128), 4, np.uint8)
    cmap[0, 10:20, 10:30] = 1
    cmap[0, 90:100, 90:96] = 2
    data = vnc_instances(np.zeros_like(cmap), cmap, min_area=5)
    data.images = (data.instances > 0).astype(np.uint8) * 255
    loc = localization_crops(data, 48, np.random.default_rng(0))
    assert len(loc) == 2 and sorted(loc.labels.tolist()) == [0, 1]
    for crop, box in zip(loc.crops, loc.boxes, strict=True):
        ys, xs = np.nonzero(crop)
        expect = [
            (xs.min() + xs.max() + 1) / 96,
            (ys.min() + ys.max() + 1) / 96,
            (xs.max() + 1 - xs.min()) / 48,
            (ys.max() + 1 - ys.min()) / 48,
        ]
        assert box.tolist() == pytest.approx(expect)
        rng = np.random.default_rng(3)
        for _ in range(6):  # the box follows the pixels through rotations and flips
            c2, b2 = augment_crop(crop, box, rng)
            ys, xs = np.nonzero(c2)
            assert b2[0] == pytest.approx((xs.min() + xs.max() + 1) / 96)
            assert b2[1] == pytest.approx((ys.min() + ys.max() + 1) / 96)
            assert b2[2] == pytest.approx((xs.max() + 1 - xs.min()) / 48)
    with pytest.raises(InputError, match="larger --crop"):
        localization_crops(data, 4, np.random.default_rng(0))


def test_real_vnc_and_fib_instances():
    shared_file("drosophila_vnc_sstem/vnc_stack1.h5")
    shared_file("fib_medulla_flyem/fib_medulla_train.h5")
    from workflows.training.data2d import instance_data, load_preset

    vnc = instance_data("vnc", "val")
    assert vnc.images.shape == (4, 512, 512)  # sections 16-19 at 2x downsampling
    n_mito = [int((c == 1).sum()) for c in vnc.classes]
    n_syn = [int((c == 2).sum()) for c in vnc.classes]
    assert min(n_mito) >= 10 and min(n_syn) >= 2
    raw, ids = load_preset("fib", "val")
    assert raw.shape == (30, 250, 250)  # z 130-159 only; z >= 160 is never read
    fib = fib_instances(raw[:2], ids[:2], 64)
    assert int(fib.instances.max()) > 20


def test_image_files_refuse_colour(tmp_path):
    from skimage import io

    from pipeline.errors import InputError as FileError  # workflows read files
    from workflows.training.data2d import read_image, read_sections

    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 200
    io.imsave(tmp_path / "c.png", rgb, check_contrast=False)
    with pytest.raises(FileError, match="grayscale"):
        read_image(str(tmp_path / "c.png"))
    gray3 = np.repeat(np.arange(256, dtype=np.uint8).reshape(16, 16)[..., None], 3, -1)
    io.imsave(tmp_path / "g.png", gray3, check_contrast=False)
    assert read_sections(str(tmp_path / "g.png")).shape == (1, 16, 16)
    with pytest.raises(FileError, match="unknown"):
        from workflows.training.data2d import preset

        preset("cremi")


def test_centered_crops_target_the_profile_under_the_centre():
    ids = np.zeros((1, 60, 60), np.uint64)
    ids[0, :, :20], ids[0, :, 20:45], ids[0, :, 45:] = 3, 7, 9
    ids[0, 25:35, 10:50] = 5  # a band crossing the three
    data = fib_instances(np.zeros((1, 60, 60), np.uint8), ids, min_area=1)
    data.images = (data.instances * 20).astype(np.uint8)  # each object its own grey value
    loc = localization_crops(data, 32, np.random.default_rng(0), centered=True)
    assert len(loc) >= 1
    for crop, box in zip(loc.crops, loc.boxes, strict=True):
        value = crop[16, 16]  # the centre pixel lies on the target object ...
        ys, xs = np.nonzero(crop == value)  # ... which lies wholly inside the crop
        assert box[0] == pytest.approx((xs.min() + xs.max() + 1) / 64)
        assert box[1] == pytest.approx((ys.min() + ys.max() + 1) / 64)
