"""Reading ahead: the next block's input is read on a background thread while the network
computes the current block, so a GPU does not wait on storage.

A ``Prefetcher`` owns one reader thread and holds at most ``depth`` reads (pending or finished
but not taken yet), so memory is bounded by ``depth`` blocks' inputs whatever the volume size.
``take(key, read)`` returns the read submitted under ``key`` (waiting for it if need be), or
reads synchronously when nothing was submitted for it; a read that failed on the thread raises
its own exception there, with a note naming the block. ``clear()`` drops everything pending
(after an error, nothing read ahead is kept); ``close()`` also stops the thread.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["Prefetcher", "thread_prefetcher"]


class Prefetcher:
    """At most ``depth`` reads ahead, on one reader thread."""

    def __init__(self, depth: int = 1):
        if depth < 1:
            raise ValueError(f"prefetch depth must be at least 1, got {depth}")
        self.depth = depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="petaseg-prefetch")
        self._pending: OrderedDict[Hashable, tuple[Future, str]] = OrderedDict()
        self.read_seconds = 0.0  # time the reader thread spent reading
        self.wait_seconds = 0.0  # time callers waited in take() (synchronous reads included)
        self.hits = 0  # takes served by a read submitted earlier

    def submit(self, key: Hashable, read: Callable[[], Any], what: str | None = None) -> None:
        """Start reading ``key`` on the reader thread (no-op when it is already there); the
        oldest read is dropped when ``depth`` are held. ``what`` names it in errors."""
        if key in self._pending:
            return
        while len(self._pending) >= self.depth:
            _, (old, _) = self._pending.popitem(last=False)
            old.cancel()
        self._pending[key] = (self._pool.submit(self._timed, read), what or f"block {key}")

    def take(self, key: Hashable, read: Callable[[], Any]) -> Any:
        """The data of ``key``: the read submitted for it, else ``read()`` now."""
        t0 = time.perf_counter()
        try:
            fut, what = self._pending.pop(key, (None, ""))
            if fut is None or fut.cancelled():
                return read()
            try:
                data = fut.result()
            except BaseException as e:
                e.add_note(f"(raised while reading ahead the input of {what})")
                raise
            self.hits += 1
            return data
        finally:
            self.wait_seconds += time.perf_counter() - t0

    def clear(self) -> None:
        """Drop every pending or finished read (their data is released)."""
        while self._pending:
            _, (fut, _) = self._pending.popitem(last=False)
            fut.cancel()

    def close(self) -> None:
        self.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __len__(self) -> int:
        return len(self._pending)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _timed(self, read: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return read()
        finally:
            self.read_seconds += time.perf_counter() - t0


_local = threading.local()


def thread_prefetcher(depth: int = 1) -> Prefetcher:
    """The calling thread's prefetcher (one per Dask worker thread, kept for the thread's life):
    blocks run one after another on a thread, so reads ahead are for that thread's next block."""
    pf = getattr(_local, "prefetcher", None)
    if pf is None or pf.depth != depth:
        if pf is not None:
            pf.close()
        pf = _local.prefetcher = Prefetcher(depth)
    return pf
