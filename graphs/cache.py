"""`InMemoryCache`: node results kept for `CachePolicy` nodes (`compile(cache=InMemoryCache())`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any

from .state import MISSING


class InMemoryCache:
    """A dict with per-entry expiry; safe to share between threads."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[float | None, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        """The cached value, or MISSING when absent or expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return MISSING
            expires, value = entry
            if expires is not None and time.monotonic() >= expires:
                del self._entries[key]
                return MISSING
            return value

    def set(self, key: Hashable, value: Any, ttl: float | None) -> None:
        with self._lock:
            self._entries[key] = (None if ttl is None else time.monotonic() + ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
