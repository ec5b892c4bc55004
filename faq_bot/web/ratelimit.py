"""A per-client sliding-window rate limit for the API."""
from __future__ import annotations

import threading
import time
from collections import deque


class RateLimiter:
    """At most `per_minute` requests per client key in any 60 seconds; 0 turns it off."""

    def __init__(self, per_minute: int, window: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> tuple[bool, float]:
        """(allowed, seconds until the next request would be allowed)."""
        if self.per_minute <= 0:
            return True, 0.0
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return False, self.window - (now - hits[0])
            hits.append(now)
            if len(self._hits) > 10_000:          # forget idle clients
                for k in [k for k, v in self._hits.items() if not v or now - v[-1] >= self.window]:
                    del self._hits[k]
            return True, 0.0
