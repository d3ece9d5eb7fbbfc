"""The flush against real Redis, on each database: counts arrive once however often it runs,
after a crash between Redis and the database too (per story and per hour alike); a burst
takes a copy out of the unique count, and its clicks out of the hours they were counted in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.clicks import BURST_SECONDS, Click, ClickCounter, edition_stats, flush_clicks
from digest.clicks.flush import _TAKE_SCRIPT
from digest.mail import click_key
from digest.store import ClickCount, ClickHour, Edition, EditionStatus, utcnow
from tests.support.stack import REDIS_URL

pytestmark = pytest.mark.integration
KEY = click_key("flush-test-secret-0123456789")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter("digest:clk:*"))
    if keys:
        client.delete(*keys)
    yield client
    client.close()


def clicks(*wanted: tuple[int, int, str, str]) -> list[str]:
    """Count (edition, story, nonce, address) clicks as the redirect does; their outcomes."""
    async def run() -> list[str]:
        async_client = redis.asyncio.Redis.from_url(REDIS_URL)
        counter = ClickCounter(async_client, KEY, scan_seconds=20)
        try:
            return [await counter.count(Click(edition_id=e, story_id=s, variant=0, nonce=n, method="GET",
                                              user_agent=BROWSER, address=a)) for e, s, n, a in wanted]
        finally:
            await async_client.aclose()
    return asyncio.run(run())


def nonce(copy: int) -> str:
    return f"{int(time.time()) - 3600:08x}0badcafe{copy:x}"


def an_edition(factory: sessionmaker[Session]) -> int:
    with factory.begin() as session:
        edition = Edition(subject="Flushed", send_at=utcnow(), status=EditionStatus.SENT)
        session.add(edition)
    return edition.id


def totals(factory: sessionmaker[Session], edition_id: int) -> dict[int, tuple[int, int]]:
    with factory() as session:
        return {row.story_id: (row.clicks, row.machine_clicks) for row in session.execute(
            select(ClickCount).where(ClickCount.edition_id == edition_id)).scalars()}


def hours(factory: sessionmaker[Session], edition_id: int) -> dict[int, tuple[int, int]]:
    """Clicks per hour (hours since 1970) as the database holds them."""
    with factory() as session:
        return {int(row.hour.timestamp()) // 3600: (row.clicks, row.machine_clicks) for row in session.execute(
            select(ClickHour).where(ClickHour.edition_id == edition_id)).scalars()}


def summed(per_hour: dict[int, tuple[int, int]]) -> tuple[int, int]:
    return sum(h for h, _ in per_hour.values()), sum(m for _, m in per_hour.values())


def test_a_flush_run_twice_or_after_a_crash_adds_each_click_once(factory: sessionmaker[Session],
                                                                 client: redis.Redis) -> None:
    edition_id = an_edition(factory)
    assert clicks((edition_id, 5, nonce(1), "a"), (edition_id, 5, nonce(2), "b"),
                  (edition_id, 6, nonce(3), "c")) == ["human"] * 3
    assert flush_clicks(factory, client) == 3
    assert flush_clicks(factory, client) == 0
    assert totals(factory, edition_id) == {5: (2, 0), 6: (1, 0)}
    assert summed(hours(factory, edition_id)) == (3, 0)

    # A flush that took the counts and died before the database: the next one applies them.
    assert clicks((edition_id, 6, nonce(4), "d")) == ["human"]
    take = client.register_script(_TAKE_SCRIPT)
    prefix = "digest:clk"
    taken = take(keys=[f"{prefix}:n:{edition_id}", f"{prefix}:f:{edition_id}", f"{prefix}:fid:{edition_id}",
                       f"{prefix}:dirty"], args=["crashed0flush0id0000000000000000", edition_id])
    assert taken[0] == b"crashed0flush0id0000000000000000"
    client.sadd(f"{prefix}:dirty", edition_id)  # as the click that follows would
    assert flush_clicks(factory, client) == 1
    assert totals(factory, edition_id) == {5: (2, 0), 6: (2, 0)}
    # And one that committed but died before deleting its Redis key: nothing twice.
    assert clicks((edition_id, 6, nonce(5), "e")) == ["human"]
    take(keys=[f"{prefix}:n:{edition_id}", f"{prefix}:f:{edition_id}", f"{prefix}:fid:{edition_id}",
               f"{prefix}:dirty"], args=["committed0flush0id00000000000000", edition_id])
    client.sadd(f"{prefix}:dirty", edition_id)
    assert flush_clicks(factory, client) == 1
    client.set(f"{prefix}:fid:{edition_id}", "committed0flush0id00000000000000")
    client.hset(f"{prefix}:f:{edition_id}", "h:6:0", 1)
    client.sadd(f"{prefix}:dirty", edition_id)
    assert flush_clicks(factory, client) == 0
    assert totals(factory, edition_id) == {5: (2, 0), 6: (3, 0)}
    assert summed(hours(factory, edition_id)) == (5, 0)
    with factory() as session:
        assert sum(h["clicks"] for h in edition_stats(session, edition_id).to_json()["hours"]) == 5


def test_a_burst_moves_a_copys_clicks_to_the_machines_and_out_of_the_unique_count(
        factory: sessionmaker[Session], client: redis.Redis) -> None:
    edition_id = an_edition(factory)
    scanner, person = nonce(10), nonce(11)
    assert clicks((edition_id, 5, scanner, "s"), (edition_id, 6, scanner, "s"), (edition_id, 7, scanner, "s"),
                  (edition_id, 5, person, "p")) == ["human", "burst", "burst", "human"]
    flush_clicks(factory, client, now=time.time() + BURST_SECONDS + 2)
    assert totals(factory, edition_id) == {5: (1, 1), 6: (0, 1), 7: (0, 1)}
    with factory() as session:
        stats = edition_stats(session, edition_id)
    assert (stats.clicks, stats.machine_clicks, stats.unique_clicks) == (1, 3, 1)
    assert summed(hours(factory, edition_id)) == (1, 3)


def test_a_burst_across_the_hour_moves_each_click_out_of_its_own_hour(
        factory: sessionmaker[Session], client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    edition_id = an_edition(factory)
    boundary = (int(time.time()) // 3600) * 3600
    copy = f"{boundary - 7200:08x}0badcafe42"  # sent two hours before: past the scan window
    monkeypatch.setattr("digest.clicks.counting.time.time", lambda: boundary - 0.5)
    assert clicks((edition_id, 5, copy, "s")) == ["human"]
    monkeypatch.setattr("digest.clicks.counting.time.time", lambda: boundary + 0.5)
    assert clicks((edition_id, 6, copy, "s")) == ["burst"]
    flush_clicks(factory, client, now=boundary + BURST_SECONDS + 2)
    hour = boundary // 3600
    assert hours(factory, edition_id) == {hour - 1: (0, 1), hour: (0, 1)}
