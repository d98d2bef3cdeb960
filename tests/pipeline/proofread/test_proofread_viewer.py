"""Proofreading inside Neuroglancer, in a real headless Chromium: the served viewer (page, data
and meshes from one port on 127.0.0.1) loads offline; key presses sent to the page run merge,
split and undo, which land in the edit log with their versions and show at once in the rendered
segmentation; a second session whose view is stale has its conflicting edit refused with a
message in the viewer."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.lut import Lut
from pipeline.proofread.editlog import EditLog
from pipeline.proofread.session import CANDIDATE, IMAGE, SEG, SINKS, SOURCES, ProofreadSession
from tests.support.browser import CHROMIUM, Browser, screenshot_reply
from tests.support.proofread_world import proofread_world

SIZE = (640, 480)


@pytest.fixture(scope="module")
def world(tmp_path_factory, request):
    """Fragments + region graph of 6 neurons; the table merges neurons 1 and 2 into one segment
    and cuts neuron 3 into two."""
    return proofread_world(tmp_path_factory.mktemp("proofview"), request.getfixturevalue("client"))


def needs_browser() -> None:
    """Skip without chromium, but fail in CI (PETASEG_CI=1), where it must be there."""
    if CHROMIUM is None:
        if os.environ.get("PETASEG_CI") == "1":
            pytest.fail("PETASEG_CI=1 but chromium is not installed (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")


def centre_of(neurons: np.ndarray, neuron: int) -> list[float]:
    """A point (x, y, z voxels, the viewer's order) deep inside a neuron."""
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(neurons == neuron)
    z, y, x = np.unravel_index(np.argmax(dist), dist.shape)
    return [x + 0.5, y + 0.5, z + 0.5]


def slice_through(labels: np.ndarray, a: int, b: int) -> list[float]:
    """A position (x, y, z voxels) whose xy section shows much of both labels ``a`` and ``b``."""
    za, zb = (np.sum(labels == v, axis=(1, 2)) for v in (a, b))
    z = int(np.argmax(np.minimum(za, zb)))
    ys, xs = np.nonzero((labels[z] == a) | (labels[z] == b))
    return [float(xs.mean()) + 0.5, float(ys.mean()) + 0.5, z + 0.5]


def screenshot(viewer, timeout_s: float = 180):
    """The rendered view as RGB pixels (neuroglancer answers once every chunk is drawn)."""
    import io

    from PIL import Image

    reply = screenshot_reply(viewer, SIZE, timeout_s)
    image = Image.open(io.BytesIO(reply.screenshot.image)).convert("RGB")
    if os.environ.get("PETASEG_SCREENSHOTS"):  # keep them to look at
        image.save(f"{os.environ['PETASEG_SCREENSHOTS']}/{time.monotonic():.0f}.png")
    return np.asarray(image)


def segment_colours(pixels: np.ndarray, min_fraction: float = 0.01) -> int:
    """How many distinct non-black colours cover at least ``min_fraction`` of the view."""
    rgb = pixels.reshape(-1, 3).astype(np.int64)
    keys = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    values, counts = np.unique(keys[keys != 0], return_counts=True)
    return int(np.sum(counts >= min_fraction * len(keys)))


def colours_shown(session: ProofreadSession, expected: int, tries: int = 3) -> int:
    """Segment colours in the rendered view; an edit reaches the page as a change notice, so a
    view drawn just before it arrived is drawn again (up to ``tries`` times)."""
    for _ in range(tries):
        n = segment_colours(screenshot(session.viewer))
        if n == expected:
            break
        time.sleep(1.0)
    return n


def show_only(session: ProofreadSession, segments, position=None, layout="xy") -> None:
    """A flat xy view (or the 3D view) of just these segments, in full colour, nothing else
    drawn."""
    with session.viewer.txn() as s:
        s.layout = layout
        s.projection_background_color = "#000000"
        s.show_axis_lines = False
        s.show_default_annotations = False
        s.show_scale_bar = False
        s.cross_section_background_color = "#000000"
        if position is not None:
            s.position = position
        for name in (SOURCES, SINKS, CANDIDATE, IMAGE):
            if name in s.layers:
                s.layers[name].visible = False
        seg = s.layers[SEG]
        seg.segments = [int(x) for x in segments]
        seg.selected_alpha = 1.0
        seg.not_selected_alpha = 0.0


def wait_for_version(path, version: int, session, timeout: float = 60.0) -> list[dict]:
    """The log's edits once it reached ``version`` and the session has shown it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with EditLog(path) as el:
            if el.head >= version:
                session.wait_idle()  # the view is updated after the commit
                return el.log()
        time.sleep(0.1)
    pytest.fail(f"the edit log never reached version {version} (the key press had no effect)")


def focus(browser: Browser) -> None:
    """Give the viewer the keyboard (a click on the data panel, as a user would)."""
    browser.click(SIZE[0] / 2, SIZE[1] / 2)


def test_merge_split_undo_from_key_presses_in_headless_chromium(world, tmp_path):
    needs_browser()
    path = tmp_path / "edits.sqlite"
    EditLog.create(path, world["lut"], world["frag_url"], world["root"]).close()
    neurons, seg_of = world["neurons"], world["seg_of"]
    a, b = seg_of[3], seg_of[30]  # the two pieces of neuron 3
    with ProofreadSession(path, author="ann") as session:
        url = urllib.parse.urlsplit(session.url)
        assert url.hostname == "127.0.0.1"
        assert session.volume.token and "appspot" not in session.url
        with Browser(session.url, tmp_path / "profile", SIZE) as browser:
            show_only(session, [a, b], slice_through(world["pieces"], a, b))
            assert colours_shown(session, 2) == 2  # two pieces, two colours
            focus(browser)
            browser.key("m")  # merge the two selected segments
            edits = wait_for_version(path, 1, session)
            assert [(e["op"], e["author"], e["version"]) for e in edits] == [("merge", "ann", 1)]
            keep = min(a, b)
            assert session.version == 1
            assert list(session.viewer.state.layers[SEG].segments) == [keep]
            assert colours_shown(session, 1) == 1  # one segment, one colour
            show_only(session, [keep], layout="3d")  # its mesh, made from both pieces
            shaded = screenshot(session.viewer).max(axis=2) > 0
            assert shaded.mean() > 0.01, shaded.mean()

            # split neurons 1 and 2 (one segment) between a source and a sink point
            merged = seg_of[1]
            src, snk = centre_of(neurons, 1), centre_of(neurons, 2)
            with session.viewer.txn() as s:
                s.layers[SOURCES].annotations = [_point("s", src)]
                s.layers[SINKS].annotations = [_point("t", snk)]
            screenshot(session.viewer)  # the page has the points
            browser.key("x")
            edits = wait_for_version(path, 2, session)
            assert edits[-1]["op"] == "split" and edits[-1]["version"] == 2
            new = edits[-1]["args"]["new_segment"]
            with EditLog(path) as el:
                lut = el.lut()
            assert _segment_at(world, lut, src) == merged and _segment_at(world, lut, snk) == new
            both = slice_through(neurons, 1, 2)
            show_only(session, [merged, new], both)
            assert colours_shown(session, 2) == 2

            browser.key("z")  # undo the split
            edits = wait_for_version(path, 3, session)
            assert (edits[-1]["op"], edits[-1]["args"]["target_op"]) == ("undo", "split")
            with EditLog(path) as el:
                assert np.array_equal(el.lut().segment, el.lut(1).segment)
            show_only(session, [merged, new], both)
            assert colours_shown(session, 1) == 1  # one segment again

            # a point placed with alt+a at the mouse lands in the source layer
            browser.mouse_move(SIZE[0] / 2, SIZE[1] / 2)
            browser.key("a")
            session.wait_idle()
            _wait(lambda: len(session.viewer.state.layers[SOURCES].annotations) == 1)


def test_a_stale_session_has_its_conflicting_edit_refused_in_the_viewer(world, tmp_path):
    needs_browser()
    path = tmp_path / "edits.sqlite"
    EditLog.create(path, world["lut"], world["frag_url"], world["root"]).close()
    seg_of = world["seg_of"]
    x, y, z = centre_of(world["neurons"], 1)
    top = {
        "rank": 1,
        "error": "split_error",
        "score": 0.93,
        "segments": [seg_of[1], seg_of[6]],
        "point_nm": [z * 10, y * 10, x * 10],
        "proposal": {"action": "merge", "fragments": [seg_of[1], seg_of[6]]},
    }
    (tmp_path / "candidates.json").write_text(json.dumps({"candidates": [top]}))
    with ProofreadSession(path, author="bob") as session:  # shows version 0
        with ProofreadSession(path, author="alice") as alice:  # a second viewer merges 4 and 5
            layers = {SEG: SimpleNamespace(segments=[seg_of[4], seg_of[5]])}
            alice.run_action(
                alice._merge, SimpleNamespace(viewer_state=SimpleNamespace(layers=layers))
            )
            assert "edit #1 merged" in _status(alice), _status(alice)
        with Browser(session.url, tmp_path / "profile", SIZE) as browser:
            screenshot(session.viewer)
            focus(browser)
            with session.viewer.txn() as s:
                s.layers[SEG].segments = [seg_of[5], seg_of[6]]  # 5 was merged away
            screenshot(session.viewer)  # the page shows that selection
            browser.key("m")
            _wait(lambda: "refused" in _status(session))
            assert "conflicts with edit #1" in _status(session), _status(session)
            assert session.version == 1  # the view reloaded the head
            with EditLog(path) as el:
                assert el.head == 1 and [e["author"] for e in el.log()] == ["alice"]
            # a disjoint edit from the reloaded view is recorded beside the other one
            with session.viewer.txn() as s:
                s.layers[SEG].segments = [seg_of[3], seg_of[6]]
            screenshot(session.viewer)
            browser.key("m")
            edits = wait_for_version(path, 2, session)
            assert [e["author"] for e in edits] == ["alice", "bob"]
            # the next ranked candidate: one point, its segments selected, its reason shown
            session.wait_idle()
            screenshot(session.viewer)  # the page has the edited view
            browser.key("n")
            _wait(
                lambda: _status(session).startswith("candidate 1/1"), what=lambda: _status(session)
            )
            assert "score 0.93" in _status(session) and "alt+m merges" in _status(session)
            state = session.viewer.state
            with EditLog(path) as el:  # its segments as they are now (6 was merged into 3)
                now = el.lut().lookup(np.array([seg_of[1], seg_of[6]], np.uint64))
            assert sorted(int(v) for v in state.layers[SEG].segments) == sorted(now.tolist())
            assert seg_of[6] not in [int(v) for v in state.layers[SEG].segments]
            assert np.allclose(state.position, [x, y, z])
            assert len(state.layers[CANDIDATE].annotations) == 1


def _point(pid: str, xyz):
    import neuroglancer

    return neuroglancer.PointAnnotation(id=pid, point=list(xyz))


def _segment_at(world, lut: Lut, xyz) -> int:
    from pipeline.io.volume import open_volume

    x, y, z = (int(c) for c in xyz)
    frag = open_volume(world["frag_url"])[z, y, x]
    return int(lut.lookup(np.array([frag], np.uint64))[0])


def _status(session: ProofreadSession) -> str:
    return str(session.viewer.config_state.state.status_messages.get("petaseg", ""))


def _wait(condition, timeout: float = 60.0, what=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"the viewer did not get there in time ({what() if what else ''})")
