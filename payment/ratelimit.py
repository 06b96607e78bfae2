"""A sliding-window rate limit per key, in memory, for one node process.

Used for what a peer may do too often: answer challenges, fail authentication.
The window is a minute of monotonic time; a key's old hits are forgotten as it
slides, and keys with no recent hits are dropped so memory stays bounded by the
number of active peers.
"""

from __future__ import annotations

import math
import time
from collections import deque

__all__ = ["SlidingWindow"]


class SlidingWindow:
    """At most limit hits per key within window_s seconds."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str | bytes, deque[float]] = {}

    def _recent(self, key: str | bytes, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        if not hits:
            del self._hits[key]
        return hits

    def retry_after(self, key: str | bytes) -> int | None:
        """Whole seconds until key may act again, or None if it is under the limit now."""
        now = time.monotonic()
        hits = self._recent(key, now)
        if len(hits) < self.limit:
            return None
        return max(1, math.ceil(self.window_s - (now - hits[0])))

    def hit(self, key: str | bytes) -> None:
        """Count one hit for key."""
        now = time.monotonic()
        self._recent(key, now)
        self._hits.setdefault(key, deque()).append(now)
