"""Canonical volume URLs: spellings of one place compare equal, local and remote alike, so an
output is recognised as an input however either is written."""

from __future__ import annotations

import os

import pytest

from pipeline.errors import InputError
from pipeline.io.urls import canonical_url, overlap, refuse_overwriting


def test_spellings_of_one_local_place_are_equal(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    same = [
        "real/x.zarr/raw",
        "./real/x.zarr/raw/",
        f"{tmp_path}/real/x.zarr/raw",
        f"file://{tmp_path}/real/x.zarr/raw",
        f"precomputed://file://{tmp_path}/real/x.zarr/raw",
        f"zarr://file://{tmp_path}/real/x.zarr/raw",
        "link/x.zarr/raw",  # through a symlink
    ]
    assert len({canonical_url(u) for u in same}) == 1


def test_remote_urls_compare_by_bucket_and_key():
    assert canonical_url("s3://b//k/raw/") == canonical_url("zarr://s3://b/k/raw") == "s3://b/k/raw"
    assert canonical_url("precomputed://gs://b/seg") == "gs://b/seg"
    assert overlap("s3://b/k.zarr", "s3://b/k.zarr/raw") == "holds"
    assert overlap("s3://b/k.zarr/raw", "s3://b/k.zarr/raw2") is None
    assert overlap("s3://b/k.zarr/raw", "gs://b/k.zarr/raw") is None


def test_an_hdf5_dataset_is_a_place_inside_its_file(tmp_path):
    h5 = tmp_path / "f.h5"
    h5.write_bytes(b"")
    assert overlap(f"{h5}/volumes/raw", str(h5)) == "lies inside"
    with pytest.raises(InputError, match="lies inside the input"):
        refuse_overwriting([f"{h5}/volumes/out"], [str(h5)], "test")
    refuse_overwriting([str(tmp_path / "o.zarr/raw")], [f"{h5}/volumes/raw", None], "test")
