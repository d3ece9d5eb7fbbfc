"""Counting a click on the request path: one Redis script, one round trip, no database.

What Redis holds (prefix `digest:clk`), and for how long:
- `n:<edition>`: a hash of counts since the last flush, `h:<story>:<variant>` (people) and
  `m:<story>:<variant>` (machines), and the same per hour of the click, `H:<hour>` and
  `M:<hour>` (hours since 1970, UTC); gone at the next flush;
- `dirty`: the editions with counts waiting for the flush;
- `pending`: a person's click waiting out BURST_SECONDS (a burst may still make it a
  machine's), as `<edition>|<story>:<variant>|<hash of the nonce>`; the flush moves those
  older than that into
- `u:<edition>:<story>:<variant>`: a HyperLogLog of the copies (nonces) whose link a person
  followed, for the unique count; kept UNIQUE_TTL_DAYS after its last click;
- `msg:<hash of the nonce>`: which links of one copy were followed in the last
  BURST_SECONDS (the burst rule); expires after them;
- `ip:<hash of the address>:<minute>`: the flood counter; expires after the minute.
Nothing there names a reader: a nonce is per copy and random, and what is stored of it or
of an address is a keyed hash.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

import redis
import redis.asyncio

from digest.clicks.rules import BURST_SECONDS, FLOOD_CLICKS_PER_MINUTE, FLOOD_WINDOW_SECONDS, is_machine_agent
from digest.mail import TEST_NONCE, hash_nonce, nonce_sent_at

log = logging.getLogger(__name__)

PREFIX = "digest:clk"
DIRTY = f"{PREFIX}:dirty"
PENDING = f"{PREFIX}:pending"
UNIQUE_TTL_DAYS = 120

# KEYS: counts hash, dirty set, message key, flood key, pending set
# ARGV: story:variant, edition, kind (human|machine), nonce hash, burst s, flood limit,
#       flood window s, now, hour (now's, since 1970)
# A copy's links followed (msg key) are noted 'h<hour>' (a person's, in that hour) or 'm',
# so a burst moves each earlier click out of the hour it was counted in.
_CLICK_SCRIPT = """
local field = ARGV[1]
local kind = ARGV[3]
local hits = redis.call('INCR', KEYS[4])
if hits == 1 then redis.call('EXPIRE', KEYS[4], ARGV[7]) end
if hits > tonumber(ARGV[6]) then kind = 'flood' end
redis.call('SADD', KEYS[2], ARGV[2])
if kind == 'human' then
  local seen = redis.call('HGETALL', KEYS[3])
  local burst = false
  for i = 1, #seen, 2 do
    if seen[i] ~= field then burst = true end
  end
  if burst then
    for i = 1, #seen, 2 do
      if seen[i] ~= 'burst' and string.sub(seen[i + 1], 1, 1) == 'h' then
        redis.call('HINCRBY', KEYS[1], 'h:' .. seen[i], -1)
        redis.call('HINCRBY', KEYS[1], 'm:' .. seen[i], 1)
        local at = string.sub(seen[i + 1], 2)
        if at ~= '' then
          redis.call('HINCRBY', KEYS[1], 'H:' .. at, -1)
          redis.call('HINCRBY', KEYS[1], 'M:' .. at, 1)
        end
        redis.call('HSET', KEYS[3], seen[i], 'm')
        redis.call('ZREM', KEYS[5], ARGV[2] .. '|' .. seen[i] .. '|' .. ARGV[4])
      end
    end
    redis.call('HSET', KEYS[3], 'burst', '1', field, 'm')
    redis.call('EXPIRE', KEYS[3], ARGV[5])
    redis.call('HINCRBY', KEYS[1], 'm:' .. field, 1)
    redis.call('HINCRBY', KEYS[1], 'M:' .. ARGV[9], 1)
    return 'burst'
  end
  redis.call('HSET', KEYS[3], field, 'h' .. ARGV[9])
  redis.call('EXPIRE', KEYS[3], ARGV[5])
  redis.call('HINCRBY', KEYS[1], 'h:' .. field, 1)
  redis.call('HINCRBY', KEYS[1], 'H:' .. ARGV[9], 1)
  redis.call('ZADD', KEYS[5], ARGV[8], ARGV[2] .. '|' .. field .. '|' .. ARGV[4])
  return 'human'
end
redis.call('HINCRBY', KEYS[1], 'm:' .. field, 1)
redis.call('HINCRBY', KEYS[1], 'M:' .. ARGV[9], 1)
return kind
"""


@dataclass(frozen=True)
class Click:
    edition_id: int
    story_id: int
    variant: int
    nonce: str
    method: str
    user_agent: str | None
    address: str  # the client's IP, hashed before it reaches Redis


def first_look(click: Click, now: float, scan_seconds: float) -> str:
    """What is known before Redis: 'test' (never counted), 'machine' (HEAD, agent, too
    soon after sending) or 'human' (so far: Redis may still find a burst or a flood)."""
    if click.nonce == TEST_NONCE:
        return "test"
    if click.method == "HEAD" or is_machine_agent(click.user_agent):
        return "machine"
    sent_at = nonce_sent_at(click.nonce)
    if sent_at is not None and now - sent_at < scan_seconds:
        return "machine"
    return "human"


class ClickCounter:
    """Counts clicks in Redis, without blocking the web server's event loop (redis.asyncio:
    the redirect is an async route, and a click that waited for a thread would cost more
    than its count). Never raises: with Redis away a click is lost and logged, and the
    reader is redirected all the same."""

    def __init__(self, client: redis.asyncio.Redis, key: bytes, scan_seconds: float) -> None:
        self.client = client
        self.key = key
        self.scan_seconds = scan_seconds
        self._script = client.register_script(_CLICK_SCRIPT)

    async def count(self, click: Click) -> str:
        """How the click was counted: human, machine, burst, flood, test, or lost."""
        now = time.time()
        kind = first_look(click, now, self.scan_seconds)
        if kind == "test":
            return kind
        edition = click.edition_id
        address = hmac.digest(self.key, click.address.encode("utf-8", "replace"), hashlib.sha256)[:12].hex()
        nonce = hash_nonce(self.key, click.nonce)
        keys = [f"{PREFIX}:n:{edition}", DIRTY, f"{PREFIX}:msg:{nonce}",
                f"{PREFIX}:ip:{address}:{int(now // FLOOD_WINDOW_SECONDS)}", PENDING]
        args = [f"{click.story_id}:{click.variant}", edition, kind, nonce, BURST_SECONDS,
                FLOOD_CLICKS_PER_MINUTE, FLOOD_WINDOW_SECONDS, f"{now:.3f}", int(now // 3600)]
        try:
            outcome = await self._script(keys=keys, args=args)
        except (redis.RedisError, OSError) as exc:
            log.warning("click not counted, Redis unavailable: edition %s story %s: %s",
                        edition, click.story_id, exc)
            return "lost"
        return outcome.decode() if isinstance(outcome, bytes) else str(outcome)
