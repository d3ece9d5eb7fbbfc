"""The flush: counts move from Redis to the database in bulk, a periodic task's work.

Safe to run twice, at once or after a crash. Per edition, a script renames the live
counts to a flushing key tagged with a new flush id (or, when a flushing key is already
there, a crashed flush's, takes it as it is); the database transaction that adds them
records that id in `click_flushes` first, so a flush id seen before adds nothing; the
flushing key goes only after the commit. Unique counts are HyperLogLog estimates read
whole at each flush and written as they are (not added), so they too can be written twice.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from datetime import UTC, datetime

import redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from digest.clicks.counting import DIRTY, PENDING, PREFIX, UNIQUE_TTL_DAYS
from digest.clicks.history import flush_history
from digest.clicks.rules import BURST_SECONDS
from digest.store import ANY, ClickCount, ClickFlush, ClickHour, ClickUnique, Edition

log = logging.getLogger(__name__)

# KEYS: live counts, flushing counts, flushing id, dirty set. ARGV: new flush id, edition.
_TAKE_SCRIPT = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {redis.call('GET', KEYS[3]) or ARGV[1], redis.call('HGETALL', KEYS[2])}
end
redis.call('SREM', KEYS[4], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return {false, {}} end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], ARGV[1])
return {ARGV[1], redis.call('HGETALL', KEYS[2])}
"""


# A person's click joins the unique count once no burst can make it a machine's any more.
# KEYS: pending set, dirty set. ARGV: cutoff (Unix seconds), HLL ttl s.
_SETTLE_SCRIPT = """
local settled = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, member in ipairs(settled) do
  local edition, pair, nonce = string.match(member, '^(%d+)|(%d+:%d+)|(%x+)$')
  if edition then
    local key = '""" + PREFIX + """:u:' .. edition .. ':' .. pair
    redis.call('PFADD', key, nonce)
    redis.call('EXPIRE', key, ARGV[2])
    redis.call('SADD', KEYS[2], edition)
  end
  redis.call('ZREM', KEYS[1], member)
end
return #settled
"""
SETTLE_MARGIN_SECONDS = 1


def _insert(session: Session):  # type: ignore[no-untyped-def]
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def flush_clicks(factory: sessionmaker[Session], client: redis.Redis, now: float | None = None) -> int:
    """Move every edition's waiting counts into the database and bring its unique counts up
    to date; returns the clicks moved."""
    now = time.time() if now is None else now
    flush_history(factory, client, now)  # first: it asks `pending`, which the settle step empties
    client.register_script(_SETTLE_SCRIPT)(keys=[PENDING, DIRTY],
                                           args=[now - BURST_SECONDS - SETTLE_MARGIN_SECONDS, UNIQUE_TTL_DAYS * 86400])
    moved = 0
    for raw in client.smembers(DIRTY):
        moved += flush_edition(factory, client, int(raw))
    return moved


def flush_edition(factory: sessionmaker[Session], client: redis.Redis, edition_id: int) -> int:
    """One edition's waiting counts into the database, whether or not it is marked dirty;
    returns the clicks moved. When another flush holds this edition's counts (taken from
    Redis, not yet committed), this one applies the same flush id, so it returns only once
    that flush has committed or failed (the database makes it wait for, then refuse, a
    flush id being written): a caller that reads the counts next (a subject test's
    decision) sees every click counted before it called."""
    take = client.register_script(_TAKE_SCRIPT)
    live, flushing, flush_key = (f"{PREFIX}:n:{edition_id}", f"{PREFIX}:f:{edition_id}",
                                 f"{PREFIX}:fid:{edition_id}")
    flush_id, pairs = take(keys=[live, flushing, flush_key, DIRTY], args=[secrets.token_hex(16), edition_id])
    counts: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    hours: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for name, value in zip(pairs[0::2], pairs[1::2], strict=True):
        kind, *key = name.decode().split(":")
        if kind in ("H", "M"):  # per hour: H people, M machines
            hours[int(key[0])][0 if kind == "H" else 1] += int(value)
        else:
            counts[(int(key[0]), int(key[1]))][0 if kind == "h" else 1] += int(value)
    moved = 0
    try:
        with factory.begin() as session:
            if session.get(Edition, edition_id) is None:
                log.info("clicks for edition %s dropped: the edition is gone", edition_id)
            else:
                if flush_id and session.get(ClickFlush, flush_id.decode()) is None:
                    session.add(ClickFlush(id=flush_id.decode()))
                    session.flush()
                    _add_counts(session, edition_id, counts)
                    _add_hours(session, edition_id, hours)
                    moved = sum(human + machine for human, machine in counts.values())
                _write_uniques(session, client, edition_id)
    except IntegrityError:  # a flush running at the same time applied this one first
        log.info("clicks of edition %s already flushed by another run", edition_id)
        return 0
    if flush_id:
        client.delete(flushing, flush_key)
    return moved


def _add_counts(session: Session, edition_id: int, counts: dict[tuple[int, int], list[int]]) -> None:
    if not counts:
        return
    insert = _insert(session)
    statement = insert(ClickCount).values([
        {"edition_id": edition_id, "story_id": story, "variant": variant, "clicks": human, "machine_clicks": machine}
        for (story, variant), (human, machine) in counts.items()])
    session.execute(statement.on_conflict_do_update(
        index_elements=["edition_id", "story_id", "variant"],
        set_={"clicks": ClickCount.clicks + statement.excluded.clicks,
              "machine_clicks": ClickCount.machine_clicks + statement.excluded.machine_clicks}))


def _add_hours(session: Session, edition_id: int, hours: dict[int, list[int]]) -> None:
    if not hours:
        return
    insert = _insert(session)
    statement = insert(ClickHour).values([
        {"edition_id": edition_id, "hour": datetime.fromtimestamp(hour * 3600, UTC), "clicks": human,
         "machine_clicks": machine}
        for hour, (human, machine) in hours.items()])
    session.execute(statement.on_conflict_do_update(
        index_elements=["edition_id", "hour"],
        set_={"clicks": ClickHour.clicks + statement.excluded.clicks,
              "machine_clicks": ClickHour.machine_clicks + statement.excluded.machine_clicks}))


def _write_uniques(session: Session, client: redis.Redis, edition_id: int) -> None:
    """Every unique count of the edition, from its HyperLogLogs: per story and variant, and
    the unions per story, per variant and over the whole edition."""
    pairs = list(session.execute(select(ClickCount.story_id, ClickCount.variant)
                                 .where(ClickCount.edition_id == edition_id)))
    if not pairs:
        return

    def key(story: int, variant: int) -> str:
        return f"{PREFIX}:u:{edition_id}:{story}:{variant}"

    groups: dict[tuple[int, int], list[str]] = defaultdict(list)
    for story, variant in pairs:
        for scope in ((story, variant), (story, ANY), (ANY, variant), (ANY, ANY)):
            groups[scope].append(key(story, variant))
    pipe = client.pipeline(transaction=False)
    for keys in groups.values():
        pipe.pfcount(*keys)
    estimates = pipe.execute()
    insert = _insert(session)
    statement = insert(ClickUnique).values([
        {"edition_id": edition_id, "story_id": story, "variant": variant, "unique_clicks": int(estimate)}
        for (story, variant), estimate in zip(groups, estimates, strict=True)])
    session.execute(statement.on_conflict_do_update(
        index_elements=["edition_id", "story_id", "variant"],
        set_={"unique_clicks": statement.excluded.unique_clicks}))
