"""Feeds polled by the real worker and beat: a feed registered once brings its stories
into the next scheduled edition with no command run, and two beats never poll one feed
twice at once."""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.feeds import FeedSettings, add_feed
from digest.store import Edition, EditionStatus, Feed, Story, utcnow
from tests.support.factories import seed_readers
from tests.support.http_server import local_server, page
from tests.support.mail import html_part, wait_for_mail
from tests.support.processes import launch_beat
from tests.support.samples import TOPICS
from tests.support.stack import Stack

# PostgreSQL only: the library underneath runs on SQLite in its unit tests, and CI keeps
# its half hour.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]


def rss(title: str, slug: str) -> bytes:
    now = format_datetime(utcnow() - timedelta(minutes=5), usegmt=True)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title>'
            f"<link>https://news.example.com/</link><item><guid>{slug}</guid>"
            f"<link>https://news.example.com/2026/{slug}</link><title>{title}</title>"
            f"<description>What happened at {title}.</description><pubDate>{now}</pubDate></item>"
            f"</channel></rss>").encode()


def register(live: Stack, url: str, every_minutes: int = 15) -> int:
    with live.factory.begin() as session:
        return add_feed(session, url, FeedSettings(every_minutes=every_minutes, featured=True), TOPICS).id


def test_a_registered_feed_fills_the_next_scheduled_edition_with_no_command_run(live: Stack, tmp_path: Path) -> None:
    addresses = seed_readers(live.factory, 3)
    with local_server({"/feed.xml": page(rss("The Harbour Bridge Reopens", "bridge"), "application/rss+xml")},
                      port=live.publisher_port) as publisher:
        register(live, publisher.url("/feed.xml"))
        with live.factory.begin() as session:
            edition = Edition(subject="Evening stories", send_at=utcnow() + timedelta(seconds=12),
                              status=EditionStatus.SCHEDULED, max_stories=5, window_hours=24)
            session.add(edition)
            session.flush()
            edition_id = edition.id
        beat = launch_beat(live.env(DIGEST_RELEASE_EVERY_SECONDS="0.5", DIGEST_FEEDS_CHECK_EVERY_SECONDS="0.5"),
                           tmp_path / "beat")
        try:
            [copy] = wait_for_mail(live, addresses[0], subject="Evening stories", timeout=90)
        finally:
            beat.terminate()
            beat.wait(timeout=20)
    assert "The Harbour Bridge Reopens" in html_part(copy.message)
    with live.factory() as session:
        story = session.scalars(select(Story)).one()
        assert story.url == "https://news.example.com/2026/bridge" and story.featured
        assert session.scalars(select(Feed)).one().last_status == "stories"
        assert session.get_one(Edition, edition_id).send_at > story.created_at  # it came in before the send


def test_two_beats_poll_each_due_feed_once(live: Stack, tmp_path: Path) -> None:
    routes = {f"/feed-{n}.xml": page(rss(f"Story {n}", f"story-{n}"), "application/rss+xml") for n in range(4)}
    with local_server(routes, port=live.publisher_port) as publisher:
        for path in routes:
            register(live, publisher.url(path), every_minutes=60)
        env = live.env(DIGEST_FEEDS_CHECK_EVERY_SECONDS="0.3")
        beats = [launch_beat(env, tmp_path / f"beat-{n}") for n in range(2)]
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len({p for p, _ in publisher.seen}) < len(routes):
                time.sleep(0.2)
            time.sleep(4)  # both beats keep ticking (13 ticks each): no feed is due again for an hour
            live.drain()
        finally:
            for beat in beats:
                beat.terminate()
                beat.wait(timeout=20)
        fetched = sorted(path for path, _ in publisher.seen)
    assert fetched == sorted(routes)  # each feed once
    with live.factory() as session:
        assert session.scalar(select(Story.id).where(Story.title == "Story 3")) is not None
        feeds = session.scalars(select(Feed)).all()
        assert all(f.last_status == "stories" and f.polling_until is None for f in feeds)
