"""Sending limits for one batch: the global messages-per-second bucket and the
per-recipient-domain ones, all shared by every worker through Redis.

The global bucket is asked for tokens in blocks (a round trip per block, not per message);
a domain bucket per message to that domain. A wait longer than MAX_WAIT_SECONDS ends the
batch early: the rest stays queued and is retried, so no worker sleeps on a lease.
"""

from __future__ import annotations

import logging

import redis

from digest.config import Settings
from digest.infra import TokenBucket, process_client

MAX_WAIT_SECONDS = 5.0
GLOBAL_BLOCK = 10
log = logging.getLogger(__name__)


class Throttle:
    def __init__(self, settings: Settings) -> None:
        self.enabled = bool(settings.rate_limit_per_second or settings.domain_limits)
        self._allowance = 0
        self._global: TokenBucket | None = None
        self._domains: dict[str, TokenBucket] = {}
        if not self.enabled:
            return
        client = process_client(settings.redis_url or settings.broker_url, timeout=1.0)
        if settings.rate_limit_per_second:
            rate = settings.rate_limit_per_second
            self._block = max(1, min(GLOBAL_BLOCK, int(rate)))
            self._global = TokenBucket(client, "global", rate, burst=max(rate, self._block))
        self._domains = {domain: TokenBucket(client, f"domain:{domain}", rate)
                         for domain, rate in settings.domain_limits.items()}

    def allow(self, recipient: str) -> bool:
        """Wait for this message's tokens; False when the wait would be too long."""
        if not self.enabled:
            return True
        try:
            if self._global is not None:
                if self._allowance == 0:
                    if not self._global.acquire(self._block, MAX_WAIT_SECONDS):
                        return False
                    self._allowance = self._block
                self._allowance -= 1
            bucket = self._domains.get(recipient.rsplit("@", 1)[-1].lower())
            return bucket is None or bucket.acquire(1, MAX_WAIT_SECONDS)
        except (redis.RedisError, OSError) as exc:
            # Without Redis the limit cannot be shared: hold back rather than flood.
            log.warning("rate limiter unavailable (%s): leaving the rest of the batch for later", exc)
            return False
