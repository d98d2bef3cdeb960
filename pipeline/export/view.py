"""``petaseg view``: serve an export folder on 127.0.0.1 and open it in a Neuroglancer viewer
run by the neuroglancer Python package (its web server is bound to 127.0.0.1 too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.errors import InputError
from pipeline.export.precomputed import read_state_file
from pipeline.export.serve import DataServer
from pipeline.export.state import rebase_state


@dataclass
class ViewerSession:
    server: DataServer
    viewer: Any  # neuroglancer.Viewer
    state: dict[str, Any]

    @property
    def url(self) -> str:
        return str(self.viewer)

    def close(self) -> None:
        import neuroglancer

        self.server.stop()
        neuroglancer.stop()

    def __enter__(self) -> ViewerSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_viewer(
    out: str, port: int = 0, viewer_port: int = 0, state: dict[str, Any] | None = None
) -> ViewerSession:
    """Serve ``out`` and start a viewer showing its saved state (or ``state``), rebased onto the
    local server's URL."""
    import neuroglancer

    saved = read_state_file(out)
    server = DataServer(out, port=port).start()
    try:
        state = rebase_state(state or saved["state"], saved.get("base", ""), server.url)
        neuroglancer.set_server_bind_address("127.0.0.1", bind_port=viewer_port)
        try:
            viewer = neuroglancer.Viewer()  # starts the viewer's web server
        except OSError as e:
            raise InputError(
                f"cannot start the viewer on 127.0.0.1:{viewer_port}: {e.strerror or e}; choose "
                "another --viewer-port (0 picks a free one)"
            ) from None
        server.allow_origin(str(viewer))
        viewer.set_state(neuroglancer.ViewerState(state))
    except Exception:
        server.stop()
        raise
    return ViewerSession(server, viewer, state)
