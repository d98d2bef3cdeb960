"""``petaseg proofread view``: proofreading inside a Neuroglancer viewer run by the neuroglancer
Python package. The fragments are served through the edit log's lookup table of the shown
version (``segview``), so an edit shows as soon as it is committed; the viewer, the data and the
meshes come from one port. Key bindings send actions that become edits in the SQLite edit log
with the same rules as the CLI: every edit names the version this view showed, and an edit that
conflicts with one made since (by another viewer or the CLI) is refused with a message in the
viewer, which then reloads the head version.

Actions run one at a time on a worker thread that owns the log's connection, never on the
viewer's server thread, so chunks keep flowing while an edit is computed.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from pathlib import Path
from typing import Any

import neuroglancer
import numpy as np

from pipeline.errors import InputError
from pipeline.io.volume import open_volume
from pipeline.proofread.editlog import EditLog, EditResult
from pipeline.proofread.review import CandidateQueue
from pipeline.proofread.segview import SegmentArray, SegmentMeshes

SEG, IMAGE, SOURCES, SINKS, CANDIDATE = (
    "segmentation",
    "image",
    "split sources",
    "split sinks",
    "candidate",
)
# key -> (action, what it does): shown in the viewer's help panel and the README
KEYS = {
    "alt+keym": ("petaseg-merge", "merge the two selected segments"),
    "alt+keya": ("petaseg-source", "place a split source point at the mouse"),
    "alt+keyb": ("petaseg-sink", "place a split sink point at the mouse"),
    "alt+keyx": ("petaseg-split", "split the segment between the source and sink points"),
    "alt+keyz": ("petaseg-undo", "undo the latest edit"),
    "alt+keyy": ("petaseg-redo", "redo the latest undone edit"),
    "alt+keyn": ("petaseg-next", "jump to the next ranked candidate"),
    "alt+keyr": ("petaseg-reload", "show the head version of the log"),
}
log = logging.getLogger(__name__)


class SegmentVolume(neuroglancer.LocalVolume):
    """A LocalVolume of segment ids whose meshes come from ``SegmentMeshes``."""

    def __init__(self, array: SegmentArray, **kwargs: Any):
        super().__init__(array, volume_type="segmentation", **kwargs)
        self.meshes = SegmentMeshes(array)

    def get_object_mesh(self, object_id: int) -> bytes:
        data = self.meshes.mesh(int(object_id))
        if data is None:
            raise neuroglancer.local_volume.InvalidObjectIdForMesh()
        return data


class ProofreadSession:
    """A viewer on an edit log; ``url`` opens it, ``close()`` stops serving it."""

    def __init__(
        self,
        log_path: str | Path,
        author: str | None = None,
        image: str | None = None,
        candidates: str | None = None,
        bind: str = "127.0.0.1",
        port: int = 0,
    ):
        self.log = EditLog(log_path)
        self.author = author
        frag_url = self.log.meta.get("fragments")
        if not frag_url:
            raise InputError(
                f"{log_path} does not know its fragments volume; recreate the log with "
                "`petaseg proofread init LOG --lut ... --fragments URL`"
            )
        self.fragments = open_volume(frag_url)
        self.version = self.log.head
        self.array = SegmentArray(self.fragments, self.log.lut())
        self.queue = CandidateQueue.find(candidates, self.log)
        image_volume = open_volume(image) if image else None  # a bad URL fails before serving
        self._worker = concurrent.futures.ThreadPoolExecutor(1, "petaseg-edits")
        self._busy = threading.Lock()
        self.viewer = start_viewer(bind, port)
        self.volume = SegmentVolume(self.array, **volume_geometry(self.fragments))
        self._layout(image_volume)
        self._bind_keys()

    # --- the viewer ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return str(self.viewer)

    @property
    def dimensions(self) -> neuroglancer.CoordinateSpace:
        vs = [float(v) for v in self.fragments.voxel_size[::-1]]
        return neuroglancer.CoordinateSpace(names=["x", "y", "z"], units="nm", scales=vs)

    def _layout(self, image) -> None:
        shape = np.asarray(self.fragments.shape[::-1], float)
        origin = np.asarray(volume_geometry(self.fragments)["voxel_offset"][::-1], float)
        with self.viewer.txn() as s:
            s.dimensions = self.dimensions
            s.position = list(origin + shape / 2)
            s.cross_section_scale = float(shape.max()) / 400
            s.projection_scale = 1.5 * float(shape.max())
            if image is not None:
                s.layers[IMAGE] = neuroglancer.ImageLayer(
                    source=neuroglancer.LocalVolume(image, **volume_geometry(image))
                )
            s.layers[SEG] = neuroglancer.SegmentationLayer(source=self.volume, selected_alpha=0.5)
            for name, colour in ((SOURCES, "#00ff00"), (SINKS, "#ff0000")):
                s.layers[name] = neuroglancer.LocalAnnotationLayer(
                    dimensions=self.dimensions, annotation_color=colour
                )
            s.layers[CANDIDATE] = neuroglancer.LocalAnnotationLayer(
                dimensions=self.dimensions, annotation_color="#ffff00"
            )
            s.selected_layer.layer = SEG
            s.layout = "4panel"
        self.status(f"{self.log.path.name} version {self.version}: {help_line()}")

    def _bind_keys(self) -> None:
        handlers = {
            "petaseg-merge": self._merge,
            "petaseg-split": self._split,
            "petaseg-undo": self._undo,
            "petaseg-redo": self._redo,
            "petaseg-source": self._place_source,
            "petaseg-sink": self._place_sink,
            "petaseg-next": self._next,
            "petaseg-reload": self._reload,
        }
        for name, handler in handlers.items():
            self.viewer.actions.add(name, self._submitter(handler))
        with self.viewer.config_state.txn() as s:
            for key, (name, _) in KEYS.items():
                s.input_event_bindings.viewer[key] = name

    def status(self, text: str) -> None:
        with self.viewer.config_state.txn() as s:
            s.status_messages["petaseg"] = text

    # --- running actions -----------------------------------------------------------------------
    def _submitter(self, handler):
        return _Submit(self, handler)

    def run_action(self, handler, state) -> None:
        """Run one action to its end (on the worker thread): an edit's result, or a refusal, is
        shown in the viewer's status line."""
        try:
            text = handler(state)
        except InputError as e:  # refused edits, conflicts, bad selections
            if self.log.head != self.version:
                self.show_head()
            text = f"refused: {e}"
        except Exception as e:  # noqa: BLE001 - a viewer must survive any failed action
            log.exception("proofreading action failed")
            text = f"failed: {type(e).__name__}: {e}"
        self.status(text)

    def show_head(self, segments: list[int] | None = None) -> None:
        """Show the log's head version: swap the table, let the viewer refetch."""
        self.version = self.log.head
        self.array.set_lut(self.log.lut(self.version))
        self.volume.invalidate()
        if segments is not None:
            with self.viewer.txn() as s:
                s.layers[SEG].segments = [int(x) for x in segments]

    def _edited(self, result: EditResult, what: str, segments: list[int]) -> str:
        self.show_head(segments)
        return f"edit #{result.edit_id} {what} (version {result.version})"

    # --- the actions ---------------------------------------------------------------------------
    def _merge(self, state) -> str:
        segs = selected_segments(state)
        if len(segs) != 2:
            raise InputError(
                f"merge: select exactly two segments (double-click them); {len(segs)} selected"
            )
        r = self.log.merge(segs[0], segs[1], self.author, "viewer", self.version)
        keep = r.segments[0]
        return self._edited(r, f"merged {segs[0]} and {segs[1]} into {keep}", [keep])

    def _split(self, state) -> str:
        layers = state.viewer_state.layers
        sources = [self.nm(a.point) for a in layers[SOURCES].annotations]
        sinks = [self.nm(a.point) for a in layers[SINKS].annotations]
        if not sources or not sinks:
            raise InputError(
                "split: place a source point (alt+a) and a sink point (alt+b) in the segment"
            )
        segment = self.log.segment_at(sources[0], self.version)
        r = self.log.split(segment, sources, sinks, self.author, "viewer", self.version)
        with self.viewer.txn() as s:
            s.layers[SOURCES].annotations = []
            s.layers[SINKS].annotations = []
        new = r.segments[1]
        return self._edited(r, f"split {segment}: the sink side is {new}", [segment, new])

    def _replay(self, op: str) -> str:
        if self.log.head != self.version:
            raise InputError(
                f"{op}: the log moved on to version {self.log.head} since this view showed "
                f"version {self.version}; the view now shows the head, {op} again if it applies"
            )
        r = self.log.undo(self.author) if op == "undo" else self.log.redo(self.author)
        return self._edited(r, f"{op} of {r.segments}", [s for s in r.segments if self._has(s)])

    def _undo(self, state) -> str:
        return self._replay("undo")

    def _redo(self, state) -> str:
        return self._replay("redo")

    def _has(self, segment: int) -> bool:
        return bool(np.any(self.array.lut.segment == np.uint64(segment)))

    def _place(self, state, layer: str) -> str:
        point = state.mouse_voxel_coordinates
        if point is None:
            raise InputError("place the mouse over the volume to place a point")
        with self.viewer.txn() as s:
            ann = s.layers[layer].annotations
            ann.append(neuroglancer.PointAnnotation(id=f"p{len(ann) + 1}", point=list(point)))
        return f"{layer}: point at {[round(float(c), 1) for c in point]} (alt+x splits)"

    def _place_source(self, state) -> str:
        return self._place(state, SOURCES)

    def _place_sink(self, state) -> str:
        return self._place(state, SINKS)

    def _next(self, state) -> str:
        cand = self.queue.next(self.array.lut)
        if cand is None:
            return "no more candidates"
        vs = np.asarray(self.fragments.voxel_size[::-1], float)
        point = list(np.asarray(cand.point_nm[::-1], float) / vs)
        with self.viewer.txn() as s:
            s.position = point
            s.layers[SEG].segments = cand.segments
            s.layers[CANDIDATE].annotations = [
                neuroglancer.PointAnnotation(id="c", point=point, description=cand.reason)
            ]
        return cand.line

    def _reload(self, state) -> str:
        self.show_head()
        return f"showing version {self.version}"

    def nm(self, point) -> list[float]:
        """A viewer point (x, y, z voxels) as z, y, x nm."""
        vs = self.fragments.voxel_size
        return [float(point[2]) * vs[0], float(point[1]) * vs[1], float(point[0]) * vs[2]]

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until every action sent so far has finished (tests, benchmarks)."""
        self._worker.submit(lambda: None).result(timeout)

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        self.log.close()

    def __enter__(self) -> ProofreadSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Submit:
    """An action handler for neuroglancer: queues the action on the session's worker."""

    def __init__(self, session: ProofreadSession, handler):
        self.session, self.handler = session, handler

    def __call__(self, state) -> None:
        self.session._worker.submit(self.session.run_action, self.handler, state)


def selected_segments(state) -> list[int]:
    """The visible selected segments of the segmentation layer, in the order shown."""
    layer = state.viewer_state.layers[SEG]
    return sorted(int(s) for s in layer.segments)


def volume_geometry(vol) -> dict[str, Any]:
    """LocalVolume arguments: axes z, y, x in nm, the offset in voxels."""
    vs = [float(v) for v in vol.voxel_size]
    dims = neuroglancer.CoordinateSpace(names=["z", "y", "x"], units="nm", scales=vs)
    offset = [int(round(o / v)) for o, v in zip(vol.offset, vs, strict=True)]
    return {"dimensions": dims, "voxel_offset": offset}


def help_line() -> str:
    return "; ".join(f"{k.replace('key', '')} {what}" for k, (_, what) in KEYS.items())


def start_viewer(bind: str, port: int) -> neuroglancer.Viewer:
    """A viewer whose web server (viewer page, data, meshes) listens on ``bind:port``."""
    neuroglancer.set_server_bind_address(bind, bind_port=port)
    try:
        return neuroglancer.Viewer()
    except OSError as e:
        raise InputError(
            f"cannot start the viewer on {bind}:{port}: {e.strerror or e}; choose another "
            "--port (0 picks a free one)"
        ) from None
