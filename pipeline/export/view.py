"""``petaseg view``: serve an export folder and a Neuroglancer viewer of it from one port (the
neuroglancer Python package's web server, bound to 127.0.0.1 unless ``bind`` says otherwise), so
one SSH tunnel reaches both and nothing is fetched from the internet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.errors import InputError
from pipeline.export.precomputed import read_state_file
from pipeline.export.serve import serve_folder_in_viewer
from pipeline.export.state import DEMO_APP, rebase_state


@dataclass
class ViewerSession:
    data_url: str  # where the export folder is served (same port as the viewer)
    viewer: Any  # neuroglancer.Viewer
    state: dict[str, Any]

    @property
    def url(self) -> str:
        return str(self.viewer)

    def close(self) -> None:
        import neuroglancer

        neuroglancer.stop()

    def __enter__(self) -> ViewerSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_viewer(
    out: str,
    port: int = 0,
    state: dict[str, Any] | None = None,
    bind: str = "127.0.0.1",
    public_viewer: bool = False,
) -> ViewerSession:
    """Serve ``out`` and start a viewer showing its saved state (or ``state``), rebased onto the
    viewer's own ``/data/`` URL; ``public_viewer`` also lets the hosted demo viewer read it."""
    import neuroglancer

    saved = read_state_file(out)
    neuroglancer.set_server_bind_address(bind, bind_port=port)
    try:
        viewer = neuroglancer.Viewer()  # starts the viewer's web server
        origins = (DEMO_APP.rstrip("/"),) if public_viewer else ()
        data_url = serve_folder_in_viewer(out, origins=origins)
    except OSError as e:
        raise InputError(
            f"cannot start the viewer on {bind}:{port}: {e.strerror or e}; choose another "
            "--port (0 picks a free one)"
        ) from None
    state = rebase_state(state or saved["state"], saved.get("base", ""), data_url)
    viewer.set_state(neuroglancer.ViewerState(state))
    return ViewerSession(data_url, viewer, state)
