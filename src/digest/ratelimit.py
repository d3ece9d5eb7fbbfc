"""Fixed-window counters in Redis: shared by every web process, gone when they expire."""

from __future__ import annotations

import hashlib

import redis


class RateLimiter:
    def __init__(self, client: redis.Redis, prefix: str = "digest:rl") -> None:
        self.client = client
        self.prefix = prefix

    def hit(self, scope: str, key: str, limit: int, window_seconds: int) -> bool:
        """Count one event; False once `limit` events fell in the current window."""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        name = f"{self.prefix}:{scope}:{digest}"
        pipe = self.client.pipeline()
        pipe.incr(name)
        pipe.expire(name, window_seconds, nx=True)
        count, _ = pipe.execute()
        return int(count) <= limit

    def once_per(self, scope: str, key: str, seconds: int) -> bool:
        """True the first time in `seconds` for this key (a cooldown), False after."""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        return bool(self.client.set(f"{self.prefix}:{scope}:{digest}", "1", nx=True, ex=seconds))
