"""A per-process cache so a worker loads a model or opens a volume once, not once per block."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_cache: dict[str, object] = {}
_lock = threading.Lock()


def cached(key: str, factory: Callable[[], T]) -> T:
    """Return the object stored under ``key`` in this process, building it on first use."""
    try:
        return _cache[key]  # type: ignore[return-value]
    except KeyError:
        pass
    with _lock:
        if key not in _cache:
            _cache[key] = factory()
        return _cache[key]  # type: ignore[return-value]


def clear() -> None:
    with _lock:
        _cache.clear()
