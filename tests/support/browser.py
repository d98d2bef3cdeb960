"""Headless Debian chromium driven over the Chrome DevTools Protocol (a websocket from Python,
websocket-client): key presses and mouse moves go to the page as a user's would, so a viewer's
key bindings run for real. No chromedriver is needed."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # WebGL on the CPU (SwiftShader): --disable-gpu alone would leave no WebGL at all
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]


class Browser:
    """One headless chromium showing ``url``; ``key`` and ``mouse_move`` act on the page."""

    def __init__(self, url: str, profile: Path, size=(800, 600), timeout: float = 60.0):
        import websocket

        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"]
            + [url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._ids = itertools.count(1)
        try:
            port = _devtools_port(Path(profile), self.proc, timeout)
            page = _page_target(port, timeout)
            self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout)
        except BaseException:
            self.close()
            raise

    def send(self, method: str, **params) -> dict:
        mid = next(self._ids)
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == mid:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def mouse_move(self, x: float, y: float) -> None:
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)

    def click(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def key(self, letter: str, alt: bool = True) -> None:
        """Press and release a letter key (with Alt, as petaseg's bindings use)."""
        code = f"Key{letter.upper()}"
        common = {
            "modifiers": 1 if alt else 0,
            "code": code,
            "key": letter.lower(),
            "windowsVirtualKeyCode": ord(letter.upper()),
        }
        self.send("Input.dispatchKeyEvent", type="rawKeyDown", **common)
        self.send("Input.dispatchKeyEvent", type="keyUp", **common)

    def evaluate(self, expression: str):
        return self.send("Runtime.evaluate", expression=expression, returnByValue=True)

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _devtools_port(profile: Path, proc: subprocess.Popen, timeout: float) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with code {proc.returncode} at start")
        if marker.exists() and marker.read_text().strip():
            return int(marker.read_text().split()[0])
        time.sleep(0.1)
    raise RuntimeError(f"chromium opened no DevTools port within {timeout} s")


def _page_target(port: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json") as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        if pages:
            return pages[0]
        time.sleep(0.1)
    raise RuntimeError("chromium shows no page")


def screenshot_reply(viewer, size: tuple[int, int], timeout_s: float = 180):
    """``viewer.screenshot`` (neuroglancer answers once every visible chunk and mesh is drawn)
    with a timeout: it waits in a daemon thread, so a browser that never renders fails the test
    instead of hanging it."""
    import threading

    import pytest

    box: dict = {}

    def take() -> None:
        try:
            box["reply"] = viewer.screenshot(size=list(size))
        except Exception as e:  # noqa: BLE001 - reported below
            box["error"] = e

    t = threading.Thread(target=take, daemon=True)
    t.start()
    t.join(timeout_s)
    if "error" in box:
        raise box["error"]
    if "reply" not in box:
        pytest.fail(f"headless chromium rendered nothing within {timeout_s} s (WebGL missing?)")
    return box["reply"]
