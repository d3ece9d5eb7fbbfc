"""Opens, counted by the open pixel of a newsletter that turned it on (`open_pixel`, off by
default): a 1x1 image per copy at `/o/<edition>/<variant>/<signature>/<nonce>`, the nonce
the copy's, never the reader.

Unreliable by nature, and said so wherever it is shown: Apple Mail Privacy Protection
loads every image of every message whether anyone reads it or not, image proxies (Gmail's)
load it once for many opens, and many clients load no images at all. So there is no
machine rule here: an image load is an open.

Redis (prefix `digest:clk`): `o:<edition>`, a hash of the opens per variant (a running
total); `ou:<edition>:<variant>`, a HyperLogLog of keyed hashes of the copies' nonces; both
kept UNIQUE_TTL_DAYS after the last open; `odirty`, the editions opened since the last
flush. The flush writes the totals as Redis has them (not added), so it can run twice.
"""

from __future__ import annotations

import logging

import redis
import redis.asyncio
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from digest.clicks.counting import PREFIX, UNIQUE_TTL_DAYS
from digest.mail import TEST_NONCE, hash_nonce
from digest.store import Edition, OpenCount

log = logging.getLogger(__name__)

OPENS_DIRTY = f"{PREFIX}:odirty"


class OpenCounter:
    """Counts image loads in Redis, one round trip; never raises (a lost open is logged)."""

    def __init__(self, client: redis.asyncio.Redis, key: bytes) -> None:
        self.client = client
        self.key = key

    async def count(self, edition_id: int, variant: int, nonce: str) -> str:
        if nonce == TEST_NONCE:  # a preview or a test copy
            return "test"
        totals, uniques = f"{PREFIX}:o:{edition_id}", f"{PREFIX}:ou:{edition_id}:{variant}"
        ttl = UNIQUE_TTL_DAYS * 86400
        pipe = self.client.pipeline(transaction=False)
        pipe.hincrby(totals, str(variant), 1)
        pipe.expire(totals, ttl)
        pipe.pfadd(uniques, hash_nonce(self.key, nonce))
        pipe.expire(uniques, ttl)
        pipe.sadd(OPENS_DIRTY, edition_id)
        try:
            await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            log.warning("open not counted, Redis unavailable: edition %s: %s", edition_id, exc)
            return "lost"
        return "open"


def flush_opens(factory: sessionmaker[Session], client: redis.Redis) -> int:
    """Write each opened edition's totals and unique estimates; returns the editions written."""
    written = 0
    for raw in client.smembers(OPENS_DIRTY):
        edition_id = int(raw)
        client.srem(OPENS_DIRTY, edition_id)  # before reading: an open after this marks it again
        totals = client.hgetall(f"{PREFIX}:o:{edition_id}")
        if not totals:
            continue
        variants = sorted(int(v) for v in totals)
        pipe = client.pipeline(transaction=False)
        for variant in variants:
            pipe.pfcount(f"{PREFIX}:ou:{edition_id}:{variant}")
        uniques = pipe.execute()
        with factory.begin() as session:
            if session.get(Edition, edition_id) is None:
                continue
            insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            statement = insert(OpenCount).values([
                {"edition_id": edition_id, "variant": variant, "opens": int(totals[str(variant).encode()]),
                 "unique_opens": min(int(unique), int(totals[str(variant).encode()]))}
                for variant, unique in zip(variants, uniques, strict=True)])
            session.execute(statement.on_conflict_do_update(
                index_elements=["edition_id", "variant"],
                set_={"opens": statement.excluded.opens, "unique_opens": statement.excluded.unique_opens}))
        written += 1
    return written
