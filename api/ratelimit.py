"""A per-subject token bucket, in process memory.

Each API replica limits on its own, so the effective limit is per replica; that
keeps the hot path free of a shared store and is enough against a runaway
script. The table is bounded: idle buckets are dropped oldest first.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from .domain.errors import RateLimited

MAX_SUBJECTS = 100_000


class RateLimiter:
    def __init__(self, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(max(burst, 1))
        self.enabled = per_minute > 0
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, key: str, now: float | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            retry = (1.0 - tokens) / self.rate
            raise RateLimited(f"too many requests; retry in {retry:.1f} s", retry_after_seconds=retry)
        self._buckets[key] = (tokens - 1.0, now)
        while len(self._buckets) > MAX_SUBJECTS:
            self._buckets.popitem(last=False)
