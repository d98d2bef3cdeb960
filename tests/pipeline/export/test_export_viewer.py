"""The served viewer really shows the export: headless Chromium loads the neuroglancer page that
``petaseg view`` serves on 127.0.0.1, neuroglancer renders the segmentation (and meshes) once
every chunk is loaded, and the screenshot written to disk is not blank."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pytest

from pipeline.export.objects import ObjectParams
from pipeline.export.precomputed import export
from pipeline.export.view import open_viewer
from tests.support.browser import CHROMIUM, Browser, screenshot_reply
from tests.support.export_data import image_for, voronoi_labels, write_zarr
from workflows.cli.app import main

# in CI (PETASEG_CI=1) a missing browser fails the test instead of skipping it
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("PETASEG_CI") != "1",
    reason="Debian's chromium is not installed (apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def out(tmp_path_factory, request):
    client = request.getfixturevalue("client")
    tmp = tmp_path_factory.mktemp("view")
    labels = voronoi_labels((32, 64, 64), n=20, seed=3)
    img = write_zarr(tmp / "in.zarr" / "raw", image_for(labels))
    seg = write_zarr(tmp / "in.zarr" / "seg", labels)
    export(
        str(tmp / "ng"),
        image_url=img,
        segmentation_url=seg,
        levels=2,
        chunks=(32, 32, 32),
        objects=ObjectParams(skeletons=False, min_size=500),
        client=client,
        progress=False,
    )
    return tmp / "ng"


def _colours(pixels: np.ndarray) -> tuple[int, float]:
    """Distinct RGB colours, and the fraction of pixels that differ from the most common one."""
    rgb = pixels[..., :3].reshape(-1, 3).astype(np.int64)
    keys = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    values, counts = np.unique(keys, return_counts=True)
    return len(values), 1.0 - counts.max() / counts.sum()


@needs_chromium
@pytest.mark.parametrize("layout", ["xy", "3d"])
def test_headless_chromium_renders_the_served_segmentation(out, tmp_path, layout):
    from PIL import Image

    with open_viewer(str(out)) as session:
        assert session.url.startswith("http://127.0.0.1:")
        port = session.url.split(":")[2].split("/")[0]
        assert session.data_url == f"http://127.0.0.1:{port}/data"  # one port for both
        with session.viewer.txn() as s:
            s.layout = layout
            s.layers["image"].visible = layout == "xy"
            seg = s.layers["segmentation"]
            seg.segments = list(range(1, 21))
            seg.selected_alpha = 0.9  # strong label colours over the image
        if CHROMIUM is None:
            pytest.fail("PETASEG_CI=1 but chromium is not installed (apt-get install -y chromium)")
        browser = Browser(session.url, tmp_path / "profile")
        try:
            reply = screenshot_reply(session.viewer, (800, 600), timeout_s=180)
        finally:
            browser.close()
    png = tmp_path / f"viewer_{layout}.png"
    png.write_bytes(reply.screenshot.image)
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert pixels.shape == (600, 800, 3)
    n_colours, covered = _colours(pixels)
    assert n_colours >= 50, n_colours  # many segment colours and shades, not a flat page
    assert covered > 0.10, covered  # the data covers a real part of the view


def test_one_port_serves_viewer_and_data_inside_the_folder_only(out, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the browser")
    (out / "leak2.txt").symlink_to(secret)
    try:
        with open_viewer(str(out)) as session:
            base = session.data_url
            status, _, body = _get(f"{base}/segmentation/info")
            assert status == 200 and json.loads(body)["type"] == "segmentation"
            gz = next((out / "segmentation" / "10_10_10").glob("*.gz"))
            status, headers, body = _get(f"{base}/segmentation/10_10_10/{gz.name[:-3]}")
            assert status == 200 and headers["Content-Encoding"] == "gzip"
            for path in ("/leak2.txt", "/../secret.txt", "/segmentation/", "/%2e%2e/x"):
                assert _get(base + path)[0] == 404, path
            port = session.url.split(":")[2].split("/")[0]
            status, _, _ = _get(f"{base}/segmentation/info", {"Host": f"evil.example:{port}"})
            assert status == 403
            # through an SSH tunnel the browser may name another local port: still local
            assert _get(f"{base}/segmentation/info", {"Host": "localhost:9"})[0] == 200
            assert _get(session.url)[0] == 200  # the viewer page from the same port
            demo = {"Origin": "https://neuroglancer-demo.appspot.com"}
            _, headers, _ = _get(f"{base}/segmentation/info", demo)
            assert "Access-Control-Allow-Origin" not in headers  # no hosted viewer unless asked
        with open_viewer(str(out), public_viewer=True) as session:
            _, headers, _ = _get(f"{session.data_url}/segmentation/info", demo)
            assert headers["Access-Control-Allow-Origin"] == demo["Origin"]
    finally:
        (out / "leak2.txt").unlink()


def test_one_port_serves_byte_ranges_as_neuroglancer_reads_shards(out):
    """Sharded meshes and skeletons are read by byte range: 206 with the asked bytes."""
    info = (out / "segmentation" / "info").read_bytes()
    with open_viewer(str(out)) as session:
        url = f"{session.data_url}/segmentation/info"
        status, headers, body = _get(url, {"Range": "bytes=2-9"})
        assert status == 206 and body == info[2:10]
        assert headers["Content-Range"] == f"bytes 2-9/{len(info)}"
        status, _, body = _get(url, {"Range": "bytes=-4"})
        assert status == 206 and body == info[-4:]
        assert _get(url, {"Range": f"bytes={len(info)}-"})[0] == 416
        status, _, body = _get(url)
        assert status == 200 and body == info


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), b""


def test_server_sends_cors_to_the_viewer_only_and_inflates_gzip_chunks(out):
    from pipeline.export.serve import DataServer

    gz = next((out / "segmentation" / "10_10_10").glob("*.gz"))
    with DataServer(out) as server:
        server.allow_origin("http://127.0.0.1:9999/v/1/")
        url = f"{server.url}/segmentation/10_10_10/{gz.name[:-3]}"
        status, headers, body = _get(url, {"Origin": "http://127.0.0.1:9999"})
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:9999"
        assert headers["Content-Encoding"] == "gzip" and body == gz.read_bytes()
        status, headers, _ = _get(url, {"Origin": "http://evil.example"})
        assert status == 200 and "Access-Control-Allow-Origin" not in headers
        status, _, body = _get(f"{server.url}/segmentation/info")
        assert status == 200 and json.loads(body)["type"] == "segmentation"


def test_server_serves_only_files_inside_the_folder_to_local_hosts(out, tmp_path):
    from pipeline.export.serve import DataServer

    secret = tmp_path / "secret.txt"
    secret.write_text("not for the browser")
    (out / "link").symlink_to(tmp_path, target_is_directory=True)
    (out / "leak.txt").symlink_to(secret)
    try:
        with DataServer(out) as server:
            for path in ("/link/secret.txt", "/leak.txt", "/../secret.txt", "/segmentation/"):
                assert _get(server.url + path)[0] == 404, path  # no links out, no listings
            for host in ("evil.example", f"evil.example:{server.port}", "127.0.0.1:1"):
                status, _, _ = _get(f"{server.url}/segmentation/info", {"Host": host})
                assert status == 403, host  # DNS rebinding: a foreign Host is refused
            assert (
                _get(f"{server.url}/segmentation/info", {"Host": f"localhost:{server.port}"})[0]
                == 200
            )
            assert _get(f"{server.url}/ng/")[0] == 200  # the bundled viewer client
    finally:
        (out / "link").unlink()
        (out / "leak.txt").unlink()


def test_view_command_prints_local_urls(out, capsys):
    assert main(["view", str(out), "--seconds", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "data:   http://127.0.0.1:" in printed and "viewer: http://127.0.0.1:" in printed
    saved = json.loads((out / "viewer_state.json").read_text())
    assert "appspot" not in printed and "appspot" not in saved.get("url", "")
    assert main(["view", str(out), "--seconds", "0.2", "--public-viewer"]) == 0
    assert "hosted: https://neuroglancer-demo.appspot.com/#!" in capsys.readouterr().out
    assert main(["view", str(out / "segmentation")]) == 2
    assert "no viewer_state.json" in capsys.readouterr().err


def test_view_on_a_port_in_use_names_the_option(out, capsys):
    import socket
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        assert main(["view", str(out), "--port", port, "--seconds", "0.1"]) == 2
        err = capsys.readouterr().err
        assert f"127.0.0.1:{port}" in err and "choose another --port" in err, err
        code = "import sys; from workflows.cli.app import entry; sys.argv[0] = 'petaseg'; entry()"
        args = ["view", str(out), "--port", port, "--seconds", "0.1"]
        r = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
        )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "choose another --port" in r.stderr, r.stderr
