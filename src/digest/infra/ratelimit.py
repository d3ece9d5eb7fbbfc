"""Fixed-window counters and failure back-off in Redis: shared by every web process, gone
when they expire."""

from __future__ import annotations

import hashlib
import os
import time

import redis

_clients: dict[tuple[int, str, float], redis.Redis] = {}


def process_client(url: str, timeout: float = 0.5) -> redis.Redis:
    """This process's client (one connection pool) for `url`: a new client per use opens a
    new connection and reads package metadata (~1 ms). A forked child gets its own."""
    key = (os.getpid(), url, timeout)
    if key not in _clients:
        _clients[key] = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    return _clients[key]


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

    def locked_for(self, scope: str, key: str) -> float:
        """Seconds until `key` may try again after its failures (0: it may now)."""
        until = self.client.get(self._name(scope, key) + ":until")
        return max(0.0, float(until) - time.time()) if until else 0.0

    def failed(self, scope: str, key: str, *, free: int, base_seconds: float, max_seconds: float,
               memory_seconds: int) -> float:
        """Count one failure of `key`: after `free` failures each locks it out for twice as
        long as the last (`base_seconds`, then doubling, at most `max_seconds`). Failures
        are remembered `memory_seconds` after the last. Returns the lock-out now in force."""
        name = self._name(scope, key)
        pipe = self.client.pipeline()
        pipe.incr(name)
        pipe.expire(name, memory_seconds)
        count, _ = pipe.execute()
        over = int(count) - free
        if over <= 0:
            return 0.0
        lock = min(max_seconds, base_seconds * 2 ** min(over - 1, 32))
        self.client.set(name + ":until", str(time.time() + lock), ex=memory_seconds)
        return lock

    def forget(self, scope: str, key: str) -> None:
        """`key` succeeded: its failures no longer count."""
        name = self._name(scope, key)
        self.client.delete(name, name + ":until")

    def _name(self, scope: str, key: str) -> str:
        return f"{self.prefix}:{scope}:{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}"

    def once_per(self, scope: str, key: str, seconds: int) -> bool:
        """True the first time in `seconds` for this key (a cooldown), False after."""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        return bool(self.client.set(f"{self.prefix}:{scope}:{digest}", "1", nx=True, ex=seconds))


# A token bucket shared by every worker: tokens refill at `rate` a second up to `burst`.
# Atomic in Redis (one script call); returns how long the caller must wait, 0 when granted.
_TAKE = """
local key, rate, burst, want, now = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', key, 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
local wait = 0
if tokens >= want then tokens = tokens - want else wait = (want - tokens) / rate end
redis.call('HSET', key, 'tokens', tokens, 'at', now)
redis.call('EXPIRE', key, math.ceil(burst / rate) + 60)
return tostring(wait)
"""


class TokenBucket:
    """messages-per-second limits that hold across processes and hosts (unlike Celery's
    per-worker rate_limit, celery#5732)."""

    def __init__(self, client: redis.Redis, name: str, rate: float, burst: float | None = None) -> None:
        self.client = client
        self.key = f"digest:bucket:{name}"
        self.rate = rate
        self.burst = burst or max(1.0, rate)
        self._script = client.register_script(_TAKE)

    def take(self, tokens: float = 1.0) -> float:
        """Take tokens if there are enough: 0.0; otherwise nothing is taken and the answer
        is how many seconds to wait before asking again."""
        wait = float(self._script(keys=[self.key], args=[self.rate, self.burst, tokens, time.time()]))
        return wait

    def acquire(self, tokens: float = 1.0, max_wait: float = 5.0) -> bool:
        """Block (sleeping) until the tokens are granted; False if that would take longer
        than max_wait (the caller then leaves the work for later)."""
        deadline = time.monotonic() + max_wait
        while True:
            wait = self.take(tokens)
            if wait <= 0:
                return True
            if time.monotonic() + wait > deadline:
                return False
            time.sleep(wait)
