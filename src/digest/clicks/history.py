"""Per-reader click history, on the way from a click to digest.readers.click_history.

Only a link that names its reader (a reader who consented, in a newsletter that offers the
history: digest.mail.links.reader_part) gets here, and only a click counted as a person's.
A burst may still turn that click into a machine's for BURST_SECONDS, so the click waits in
Redis, `digest:clk:hist` (a sorted set by time, members
`<edition>|<story>:<variant>|<hash of the nonce>|<reader>|<time>`), and the flush writes it
only if its person's click is still in the counter's `pending` set once no burst can touch
it any more: machine clicks never become history. The reader's id stays in Redis for those
seconds (about BURST_SECONDS plus one flush), and the database row is written only if their
consent and the newsletter's option still stand (digest.readers.remember_clicks).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import redis
import redis.asyncio
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from digest.clicks.counting import PENDING, PREFIX
from digest.clicks.rules import BURST_SECONDS
from digest.readers import RememberedClick, remember_clicks
from digest.store import MASTHEAD

log = logging.getLogger(__name__)

WAITING = f"{PREFIX}:hist"
READY = f"{PREFIX}:hist:ready"

# KEYS: waiting, pending, ready. ARGV: cutoff. Moves each waiting click old enough to be past
# any burst into `ready` if its person's click is still pending (a burst removes it), drops
# it otherwise; answers what is ready.
_SETTLE_SCRIPT = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES')
for i = 1, #due, 2 do
  local click = string.match(due[i], '^(%d+|%d+:%d+|%x+)|')
  if click and redis.call('ZSCORE', KEYS[2], click) then
    redis.call('ZADD', KEYS[3], due[i + 1], due[i])
  end
  redis.call('ZREM', KEYS[1], due[i])
end
return redis.call('ZRANGE', KEYS[3], 0, -1)
"""


async def remember(client: redis.asyncio.Redis, edition_id: int, story_id: int, variant: int, nonce_hash: str,
                   reader_id: int) -> None:
    """After a person's click on a link that names its reader; never raises (like the count)."""
    if story_id == MASTHEAD:  # the publisher's site, not a story
        return
    now = time.time()
    member = f"{edition_id}|{story_id}:{variant}|{nonce_hash}|{reader_id}|{now:.3f}"
    try:
        await client.zadd(WAITING, {member: now})
    except (redis.RedisError, OSError) as exc:
        log.warning("click history not kept, Redis unavailable: edition %s story %s: %s", edition_id, story_id, exc)


def flush_history(factory: sessionmaker[Session], client: redis.Redis, now: float) -> int:
    """Write the remembered clicks that are past the burst window; runs before the counter's
    own settle step (which empties `pending`). Safe to run twice: a click is kept once."""
    ready = client.register_script(_SETTLE_SCRIPT)(keys=[WAITING, PENDING, READY], args=[now - BURST_SECONDS])
    if not ready:
        return 0
    clicks = []
    for raw in ready:
        edition, pair, _, reader, at = raw.decode().split("|")
        story, variant = pair.split(":")
        clicks.append(RememberedClick(subscriber_id=int(reader), edition_id=int(edition), story_id=int(story),
                                      clicked_at=datetime.fromtimestamp(float(at), UTC)))
    written = 0
    try:
        with factory.begin() as session:
            written = remember_clicks(session, clicks)
    except SQLAlchemyError as exc:  # never holds up the counts' flush; the history misses these
        log.warning("click history: %s clicks not kept: %s", len(clicks), exc)
    client.zrem(READY, *ready)
    return written
