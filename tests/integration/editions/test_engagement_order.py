"""Engagement-aware order on real databases and Redis: three editions sent through the send
loop, readers' clicks counted and flushed as the redirect and the worker do; then a new
edition's unpinned stories come in their topics' order when the newsletter has the option
on, newest first when it is off, and pins and exclusions win either way."""

from __future__ import annotations

import asyncio
import time
from dataclasses import astuple
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
import redis.asyncio
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from digest.clicks import Click, ClickCounter, flush_clicks
from digest.config import Settings
from digest.delivery.pipeline import release_due
from digest.delivery.sender import send_batch
from digest.editions import curate, explain_order, select_for_edition
from digest.editions.engagement import recent_appearances
from digest.editions.newsletters import NewsletterChanges, create_newsletter, edit_newsletter
from digest.mail import click_key
from digest.mail.transport import RecordingTransport
from digest.readers import set_subscriptions
from digest.store import Edition, EditionStatus, EditionTally, Story, StoryStatus, Subscriber, utcnow
from tests.support.factories import seed_readers
from tests.support.samples import TOPICS
from tests.support.stack import REDIS_URL, TABLES, in_process_factory

pytestmark = pytest.mark.integration
SETTINGS = Settings(env="test", secret_key="engagement-tests-secret-0123456789")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
READERS = 5
# People's clicks per earlier edition, by topic: politics 3 of 5 copies, world 1, sports none.
CLICKS = {"politics": 3, "world": 1, "sports": 0}


@pytest.fixture(params=["postgresql", "sqlite"])
def factory(request, tmp_path) -> Iterator[sessionmaker[Session]]:  # type: ignore[no-untyped-def]
    yield from in_process_factory(request, tmp_path / "e.db", TABLES)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter("digest:clk:*"))
    if keys:
        client.delete(*keys)
    yield client
    client.close()


def add_story(session: Session, title: str, topic: str, hours_ago: float) -> int:
    story = Story(url=f"https://news.example.org/{title.lower().replace(' ', '-')}", title=title, summary="s",
                  topics=[topic], published_at=utcnow() - timedelta(hours=hours_ago), status=StoryStatus.PUBLISHED)
    session.add(story)
    session.flush()
    return story.id


def new_edition(session: Session, newsletter_id: int, status: EditionStatus) -> Edition:
    edition = Edition(subject="Morning", send_at=utcnow() - timedelta(seconds=1), status=status, max_stories=3,
                      window_hours=24 * 30, newsletter_id=newsletter_id)
    session.add(edition)
    session.flush()
    return edition


def send_all(factory: sessionmaker[Session]) -> None:
    batches: list[tuple[int, int, int]] = []
    release_due(factory, utcnow(), 1000, lambda *a: batches.append(a), missed_limit_minutes=180)
    for batch in batches:
        send_batch(factory, *batch, RecordingTransport(), SETTINGS)


def count_clicks(wanted: list[tuple[int, int]]) -> None:
    """(edition, story) clicks by people, each from its own copy, as the redirect counts them."""
    async def run() -> list[str]:
        async_client = redis.asyncio.Redis.from_url(REDIS_URL)
        counter = ClickCounter(async_client, click_key(SETTINGS.secret_key), scan_seconds=20)
        try:
            return [await counter.count(Click(edition_id=e, story_id=s, variant=0, method="GET", user_agent=BROWSER,
                                              nonce=f"{int(time.time()) - 3600:08x}0badcafe{i:x}",
                                              address=f"198.51.100.{i}"))
                    for i, (e, s) in enumerate(wanted)]
        finally:
            await async_client.aclose()
    assert asyncio.run(run()) == ["human"] * len(wanted)


def test_unpinned_stories_follow_their_topics_clicks_when_the_newsletter_asks(
        factory: sessionmaker[Session], client: redis.Redis) -> None:
    seed_readers(factory, READERS)
    with factory.begin() as session:
        newsletter = create_newsletter(session, slug="morning", name="Morning", cron="0 7 * * *",
                                       timezone="Europe/Kyiv", allowed_topics=TOPICS, window_hours=24 * 30)
        newsletter_id = newsletter.id
        for subscriber in session.scalars(select(Subscriber)):
            set_subscriptions(session, subscriber, [newsletter_id])

    # Three editions sent, each with a politics, a world and a sports story (pinned: exactly these).
    wanted: list[tuple[int, int]] = []
    for day in range(3):
        with factory.begin() as session:
            edition = new_edition(session, newsletter_id, EditionStatus.SCHEDULED)
            stories = {topic: add_story(session, f"{topic} day {day}", topic, 24 * (3 - day)) for topic in CLICKS}
            for story_id in stories.values():
                curate(session, edition.id, story_id, "pin")
            wanted += [(edition.id, stories[topic]) for topic, n in CLICKS.items() for _ in range(n)]
        send_all(factory)
    with factory() as session:
        assert [t.sent for t in session.scalars(select(EditionTally))] == [READERS] * 3
        assert session.scalar(select(Edition.status).where(Edition.id == wanted[0][0])) == EditionStatus.SENT
    count_clicks(wanted)
    assert flush_clicks(factory, client, now=time.time() + 10) == len(wanted)

    # The history: each story sent with the copies of its edition's tally; an edition without
    # a tally (one sent before tallies) has its sent deliveries counted instead, to the same.
    with factory() as session:
        history, editions = recent_appearances(session, newsletter_id)
    assert editions == 3 and sorted(map(astuple, history)) == sorted(
        ((topic,), n, READERS) for topic, n in CLICKS.items() for _ in range(3))
    with factory.begin() as session:
        session.execute(delete(EditionTally).where(EditionTally.edition_id == wanted[0][0]))
    with factory() as session:
        assert sorted(map(astuple, recent_appearances(session, newsletter_id)[0])) == sorted(map(astuple, history))

    # The next edition: four fresh stories, newest first sports, world, politics, culture (never sent).
    with factory.begin() as session:
        edition = new_edition(session, newsletter_id, EditionStatus.DRAFT)
        edition_id = edition.id
        ids = {topic: add_story(session, f"{topic} today", topic, hours) for topic, hours in
               (("sports", 1), ("world", 2), ("politics", 3), ("culture", 4))}

    def chosen() -> list[str]:
        with factory() as session:
            story_ids = select_for_edition(session, session.get_one(Edition, edition_id))
        names = {v: k for k, v in ids.items()}
        return [names[i] for i in story_ids]

    assert chosen() == ["sports", "world", "politics"]  # off (the default): newest first
    with factory.begin() as session:
        edit_newsletter(session, newsletter_id, NewsletterChanges(engagement_order=True), TOPICS, utcnow())
    # politics 9 of 15 copies; world 3 of 15, shrunk toward the mean 12 of 45 (culture, never
    # sent, counts at the mean); sports none.
    assert chosen() == ["politics", "culture", "world"]
    with factory() as session:
        edition = session.get_one(Edition, edition_id)
        words = explain_order(session, edition)
    assert words is not None and words.startswith("politics 43.3 %, world 23.3 %, sports 13.3 %, from the last 3 editions")

    # The editor's pin leads, an exclusion is never there, whatever readers clicked.
    with factory.begin() as session:
        curate(session, edition_id, ids["sports"], "pin")
    assert chosen() == ["sports", "politics", "culture"]
    with factory.begin() as session:
        curate(session, edition_id, ids["politics"], "exclude")
    assert chosen() == ["sports", "culture", "world"]

    with factory.begin() as session:
        edit_newsletter(session, newsletter_id, NewsletterChanges(engagement_order=False), TOPICS, utcnow())
        curate(session, edition_id, ids["sports"], "clear")
        curate(session, edition_id, ids["politics"], "clear")
    assert chosen() == ["sports", "world", "politics"]  # off again: the order as it was
    with factory() as session:
        assert explain_order(session, session.get_one(Edition, edition_id)) is None
