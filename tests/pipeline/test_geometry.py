import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.geometry import Roi
from pipeline.runner.grid import BlockGrid


def test_roi_arithmetic_in_voxels_and_nm():
    roi = Roi((10, 20, 30), (40, 50, 60))
    assert roi.end == (50, 70, 90)
    assert roi.grow(5).shape == (50, 60, 70)
    assert roi.grow((1, 0, 0), (0, 0, 2)) == Roi((9, 20, 30), (41, 50, 62))
    assert roi.intersect(Roi((0, 0, 0), (20, 30, 40))) == Roi((10, 20, 30), (10, 10, 10))
    assert roi.intersect(Roi((100, 0, 0), (5, 5, 5))).empty
    assert roi.contains(Roi((10, 20, 30), (1, 1, 1))) and not roi.contains(roi.grow(1))
    assert roi.snap_to_grid(16) == Roi((0, 16, 16), (64, 64, 80))
    assert roi.snap_to_grid(16, "shrink") == Roi((16, 32, 32), (32, 32, 48))
    world = Roi((40, 8, 8), (400, 80, 80))
    assert world.to_voxels((40, 4, 4)) == Roi((1, 2, 2), (10, 20, 20))
    assert world.to_voxels((40, 4, 4)).to_world((40, 4, 4)) == world
    with pytest.raises(ValueError):
        Roi((0, 0, 0), (10, 10, 10)).to_voxels((4, 4, 4))
    assert Roi.from_slices(roi.to_slices()) == roi


shapes = st.tuples(*[st.integers(1, 40)] * 3)


@settings(max_examples=150, deadline=None)
@given(
    shape=shapes,
    offset=st.tuples(*[st.integers(-20, 20)] * 3),
    block=shapes,
    context=st.tuples(*[st.integers(0, 7)] * 3),
    edge=st.sampled_from(["clip", "pad"]),
)
def test_write_rois_tile_volume_exactly_once(shape, offset, block, context, edge):
    total = Roi(offset, shape)
    grid = BlockGrid(total, block, context, edge=edge)
    cover = np.zeros(shape, dtype=np.int32)
    ids = set()
    for b in grid.blocks():
        assert b.block_id not in ids
        ids.add(b.block_id)
        assert grid.block(b.block_id) == b  # stable: rebuilt from the id alone
        assert grid.id_of(b.index) == b.block_id
        assert total.contains(b.write_roi) and not b.write_roi.empty
        assert b.read_roi.contains(b.write_roi)
        if edge == "clip":
            assert total.contains(b.read_roi)
        else:
            assert b.read_roi == b.write_roi.grow(context)
        cover[b.write_roi.shift(tuple(-o for o in offset)).to_slices()] += 1
    assert (cover == 1).all()
    assert len(ids) == grid.num_blocks
