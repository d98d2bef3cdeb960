"""``petaseg view``: serve an export folder on 127.0.0.1 and open a Neuroglancer viewer."""

from __future__ import annotations

import time

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def view(
        out: str = typer.Argument(..., help="folder written by `petaseg export`"),
        port: int = typer.Option(0, help="data server port on 127.0.0.1 (0 = any free port)"),
        viewer_port: int = typer.Option(0, help="viewer port on 127.0.0.1 (0 = any free port)"),
        browser: bool = typer.Option(False, help="also open the URL in the default browser"),
        seconds: float = typer.Option(
            0, help="stop after this many seconds (0 = serve until Ctrl-C)"
        ),
    ) -> None:
        """Serve OUT over HTTP (CORS, 127.0.0.1 only) and print the Neuroglancer viewer URL."""
        from pipeline.export.view import open_viewer

        session = open_viewer(out, port=port, viewer_port=viewer_port)
        try:
            print(f"data:   {session.server.url}", flush=True)
            print(f"viewer: {session.url}", flush=True)
            if browser:
                import webbrowser

                webbrowser.open(session.url)
            deadline = time.monotonic() + seconds if seconds > 0 else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            session.close()
