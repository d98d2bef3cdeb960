"""Serve a local precomputed folder over HTTP on 127.0.0.1, with CORS for the viewer's origin only,
so a Neuroglancer page (from another origin, e.g. the neuroglancer Python viewer) can read it and
other web pages cannot (no listings, no files outside the folder, no foreign Host header).

cloud-volume stores compressed chunks as ``name.gz``; Neuroglancer asks for ``name``. The
handler serves ``name.gz`` with ``Content-Encoding: gzip`` so the browser inflates it. The
Neuroglancer client shipped inside the neuroglancer Python package is served under ``/ng/``,
so a viewer page works offline: ``http://127.0.0.1:PORT/ng/#!{state}``.
"""

from __future__ import annotations

import functools
import os
import posixpath
import threading
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import tornado.web

from pipeline.errors import InputError

CLIENT_PREFIX = "/ng/"


def neuroglancer_client_dir() -> Path:
    """The static Neuroglancer client bundled with the neuroglancer Python package."""
    import neuroglancer

    path = Path(neuroglancer.__file__).parent / "static" / "client"
    if not (path / "index.html").exists():
        raise InputError(
            f"the neuroglancer package has no bundled client at {path}; "
            "reinstall it with `pip install --force-reinstall neuroglancer`"
        )
    return path


class _Handler(SimpleHTTPRequestHandler):
    """Files of the served folder (and the bundled client under ``/ng/``), nothing else: no
    directory listings, no file reached through a link out of the folder, no foreign ``Host``
    (DNS rebinding), CORS only for the origins the server was told about (the viewer's)."""

    client_dir: str = ""
    server: _LocalServer

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.headers.get("Host", "") not in self.server.allowed_hosts:
            self.send_error(403, "foreign Host header: this server answers 127.0.0.1 only")
            return False
        return True

    def end_headers(self) -> None:
        origin = self.headers.get("Origin") if hasattr(self, "headers") else None
        if origin and origin in self.server.allowed_origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
            self.send_header("Access-Control-Allow-Headers", "x-requested-with, range")
            self.send_header("Access-Control-Expose-Headers", "content-range, content-encoding")
            self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def do_OPTIONS(self) -> None:  # noqa: N802 - http.server naming
        self.send_response(204)
        self.end_headers()

    def translate_path(self, path: str) -> str:
        clean = urllib.parse.urlsplit(path).path
        if clean.startswith(CLIENT_PREFIX) or clean == CLIENT_PREFIX.rstrip("/"):
            rel = posixpath.normpath(urllib.parse.unquote(clean[len(CLIENT_PREFIX) :] or "/"))
            parts = [p for p in rel.split("/") if p not in ("", ".", "..")]
            return os.path.join(self.client_dir, *parts) if parts else self.client_dir
        return super().translate_path(path)

    def _inside(self, path: str) -> bool:
        """Whether ``path`` is really inside the served folder or the client (links resolved)."""
        real = os.path.realpath(path)
        roots = (os.path.realpath(self.directory), os.path.realpath(self.client_dir))
        return any(real == r or real.startswith(r + os.sep) for r in roots)

    def send_head(self):
        path = self.translate_path(self.path)
        gz = path + ".gz"
        if not os.path.exists(path) and os.path.isfile(gz):
            if not self._inside(gz):
                self.send_error(404, "File not found")
                return None
            f = open(gz, "rb")  # noqa: SIM115 - closed by copyfile's caller
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            return f
        if os.path.exists(path) and not self._inside(path):
            self.send_error(404, "File not found")
            return None
        return super().send_head()

    def list_directory(self, path):  # no listings: a folder is not a file
        self.send_error(404, "File not found")
        return None

    def guess_type(self, path: str) -> str:
        if path.endswith(".wasm"):
            return "application/wasm"
        if os.path.basename(path) in ("info",) or ":" in os.path.basename(path):
            return "application/octet-stream"
        return super().guess_type(path)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        return None


class _LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    allowed_hosts: set[str]
    allowed_origins: set[str]


class DataServer:
    """A background HTTP server for ``root`` on ``127.0.0.1:port`` (0 = any free port)."""

    def __init__(self, root: str | os.PathLike, port: int = 0, host: str = "127.0.0.1"):
        root = Path(root)
        if not root.is_dir():
            raise InputError(
                f"{root} is not a folder; serve the folder written by `petaseg export`"
            )
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise InputError(
                f"refusing to serve {root} on {host}: petaseg serves on 127.0.0.1 only"
            )
        handler = type("Handler", (_Handler,), {"client_dir": str(neuroglancer_client_dir())})
        try:
            self.httpd = _LocalServer((host, port), functools.partial(handler, directory=str(root)))
        except OSError as e:
            raise InputError(
                f"cannot serve {root} on {host}:{port}: {e.strerror or e}; choose another --port "
                "(0 picks a free one)"
            ) from None
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        names = ("127.0.0.1", "localhost") if host != "::1" else ("[::1]", "localhost")
        self.httpd.allowed_hosts = {f"{n}:{self.port}" for n in names}
        self.httpd.allowed_origins = set()
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def allow_origin(self, url: str) -> None:
        """Let pages from ``url``'s origin (the viewer's) read the folder (CORS)."""
        parts = urllib.parse.urlsplit(url)
        self.httpd.allowed_origins.add(f"{parts.scheme}://{parts.netloc}")

    def start(self) -> DataServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> DataServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_folder_in_viewer(
    root: str | os.PathLike, prefix: str = "/data/", origins: tuple[str, ...] = ()
) -> str:
    """Serve ``root`` from the neuroglancer viewer's own web server under ``prefix``: one port
    for the viewer page and the data (one SSH tunnel), same origin (no CORS needed). The rules
    are those of ``DataServer``: files inside the folder only, no listings, gzip chunks
    inflated by the browser, and on a loopback address a foreign ``Host`` is refused. Pages of
    ``origins`` (a hosted viewer the user asked for) may read it too (CORS). Returns the data's
    base URL."""
    import neuroglancer
    import neuroglancer.server as ng_server

    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; serve the folder written by `petaseg export`")
    neuroglancer.server.start()
    server = ng_server.global_server
    host = urllib.parse.urlsplit(server.server_url).hostname or "127.0.0.1"
    local = host in ("127.0.0.1", "localhost", "::1")
    # the host name only: an SSH tunnel may arrive on another local port
    hosts = {"127.0.0.1", "localhost", "[::1]"} if local else None
    server.app.add_handlers(
        r".*",
        [
            (
                f"^{prefix}(.*)$",
                FolderHandler,
                {"root": str(root), "hosts": hosts, "origins": set(origins)},
            )
        ],
    )
    return f"{server.server_url}{prefix.rstrip('/')}"


def byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The (first, last) byte of a single-range ``Range: bytes=...`` header (as Neuroglancer
    sends to read sharded files), None to send the whole file (no header, or a form this server
    does not serve, such as several ranges), or "unsatisfiable" when it starts past the end."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes=") :].strip().partition("-")
    try:
        if not first:  # a suffix: the last N bytes
            n = int(last)
            return (max(0, size - n), size - 1) if n > 0 and size else "unsatisfiable"
        a = int(first)
        b = min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None
    if a >= size or b < a:
        return "unsatisfiable"
    return a, b


def host_name(host: str) -> str:
    """The name of a ``Host`` header's ``name:port`` (``[::1]`` kept whole)."""
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.split(":")[0]


class FolderHandler(tornado.web.RequestHandler):
    """One file of a served folder (see ``serve_folder_in_viewer``)."""

    def initialize(self, root: str, hosts: set[str] | None, origins: set[str]) -> None:
        self.root, self.hosts, self.origins = os.path.realpath(root), hosts, origins

    def prepare(self) -> None:  # CORS only for the origins asked for (a hosted viewer)
        origin = self.request.headers.get("Origin")
        if origin and origin in self.origins:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Vary", "Origin")

    def options(self, rel: str) -> None:
        self.set_status(204)
        self.finish()

    def get(self, rel: str) -> None:
        if self.hosts is not None and host_name(self.request.host) not in self.hosts:
            self.send_error(403)
            return
        parts = [p for p in urllib.parse.unquote(rel).split("/") if p not in ("", ".", "..")]
        path = os.path.join(self.root, *parts)
        gzip = not os.path.exists(path) and os.path.isfile(path + ".gz")
        real = os.path.realpath(path + ".gz" if gzip else path)
        if not real.startswith(self.root + os.sep) or not os.path.isfile(real):
            self.send_error(404)
            return
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Accept-Ranges", "bytes")
        if gzip:
            self.set_header("Content-Encoding", "gzip")
        size = os.path.getsize(real)
        span = byte_range(self.request.headers.get("Range"), size)
        if span == "unsatisfiable":
            self.set_header("Content-Range", f"bytes */{size}")
            self.send_error(416)
            return
        with open(real, "rb") as f:
            if span is None:
                self.finish(f.read())
                return
            first, last = span
            f.seek(first)
            self.set_status(206)
            self.set_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.finish(f.read(last - first + 1))
