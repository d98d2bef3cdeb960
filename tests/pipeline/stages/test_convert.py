import numpy as np

from pipeline.io.volume import open_volume
from tests.conftest import shared_file
from workflows.cli.app import main


def test_h5_zarr_precomputed_zarr_is_bit_identical(tmp_path, client):
    from pipeline.stages.convert import convert

    h5 = shared_file("fib_medulla_flyem/fib_medulla_train.h5")
    for dataset in ("volumes/raw", "volumes/labels/neuron_ids"):
        name = dataset.rsplit("/", 1)[-1]
        src = f"{h5}/{dataset}"
        z1 = str(tmp_path / "a.zarr" / name)
        pc = f"precomputed://file://{tmp_path}/pc_{name}"
        z2 = str(tmp_path / "b.zarr" / name)
        convert(src, z1, chunks=(32, 64, 64), shards=(64, 128, 128), client=client, progress=False)
        convert(z1, pc, chunks=(32, 64, 64), client=client, progress=False)
        convert(pc, z2, chunks=(16, 50, 50), client=client, progress=False)
        ref = open_volume(src)
        out = open_volume(z2)
        assert (out.shape, out.dtype, out.voxel_size, out.offset) == (
            ref.shape,
            ref.dtype,
            ref.voxel_size,
            ref.offset,
        )
        assert open_volume(pc).voxel_size == (10, 10, 10)
        np.testing.assert_array_equal(out.read(), ref.read())


def test_cli_info_and_convert(tmp_path, capsys):
    h5 = shared_file("gala_fib_example/gala_fib_train.h5")
    dst = str(tmp_path / "g.zarr" / "raw")
    assert (
        main(
            ["convert", f"{h5}/volumes/raw", dst, "--chunks", "25,50,50", "--cluster", "threads:2"]
        )
        == 0
    )
    assert main(["info", dst, "--json"]) == 0
    out = capsys.readouterr().out
    assert '"shape": [50, 100, 200]' in out and '"chunks": [25, 50, 50]' in out


def test_cli_errors_name_the_input_and_exit_2(tmp_path, capsys):
    assert main(["info", str(tmp_path / "none.zarr" / "raw")]) == 2
    assert "no Zarr volume at" in capsys.readouterr().err
    h5 = shared_file("gala_fib_example/gala_fib_train.h5")
    code = main(
        [
            "convert",
            f"{h5}/volumes/raw",
            str(tmp_path / "x.zarr/raw"),
            "--chunks",
            "25,50,50",
            "--block",
            "30,50,50",
            "--cluster",
            "threads:1",
        ]
    )
    assert code == 2 and "not a multiple" in capsys.readouterr().err
    assert main(["convert", "a", "b", "--chunks", "1,2"]) == 2
    assert "--chunks '1,2': expected three positive integers" in capsys.readouterr().err


def test_convert_a_roi_keeps_world_coordinates_and_refuses_bad_boxes(tmp_path, client, capsys):
    from pipeline.geometry import Roi
    from pipeline.io.volume import create_volume
    from pipeline.stages.convert import convert

    data = np.arange(40 * 50 * 60, dtype=np.uint32).reshape(40, 50, 60)
    src = create_volume(
        str(tmp_path / "a.zarr/x"),
        data.shape,
        data.dtype,
        (10, 4, 4),
        (100, 0, 8),
        chunks=(16,) * 3,
    )
    src.write(src.roi, data)
    box = Roi.from_bounds((6, 16, 14), (30, 50, 41))
    convert(
        src.url, str(tmp_path / "b.zarr/x"), (8, 16, 16), roi=box, client=client, progress=False
    )
    out = open_volume(str(tmp_path / "b.zarr/x"))
    assert out.shape == (24, 34, 27) and out.offset == (160, 64, 64)
    np.testing.assert_array_equal(out.read(), data[6:30, 16:50, 14:41])
    # the same voxels read back at the same world coordinates from the source
    np.testing.assert_array_equal(src.read(out.roi), out.read())
    # the CLI: ':' is the whole axis; a box outside the volume is refused
    dst = str(tmp_path / "c.zarr/x")
    assert main(["convert", src.url, dst, "--chunks", "8,16,16", "--roi", "6:30,:,:"]) == 0
    np.testing.assert_array_equal(open_volume(dst).read(), data[6:30, :, :])
    assert main(["convert", src.url, str(tmp_path / "d.zarr/x"), "--roi", "0:41,:,:"]) == 2
    assert "reaches outside" in capsys.readouterr().err
    odd = str(tmp_path / "e.zarr/x")  # a box anywhere: the output's chunk grid starts at it
    assert main(["convert", src.url, odd, "--chunks", "8,16,16", "--roi", "3:9,5:50,7:8"]) == 0
    np.testing.assert_array_equal(open_volume(odd).read(), data[3:9, 5:50, 7:8])
    assert main(["convert", src.url, str(tmp_path / "f.zarr/x"), "--roi", "1:2,3"]) == 2
    assert "z0:z1,y0:y1,x0:x1" in capsys.readouterr().err
