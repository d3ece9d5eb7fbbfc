"""An alerts newsletter with the real worker and beat: two stories arriving make one
edition, sent to each reader once and carrying both; a third story alone makes none, a
fourth makes the next alert (with the two new ones only)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.editions import create_newsletter
from digest.readers import set_subscriptions
from digest.stories import upsert_stories
from digest.stories.parse import StoryIn
from digest.store import Edition, EditionStatus, Subscriber, utcnow
from tests.support.factories import seed_readers
from tests.support.mail import html_part, wait_for_mail
from tests.support.processes import launch_beat
from tests.support.samples import TOPICS
from tests.support.stack import Stack

# PostgreSQL only: the library underneath runs on SQLite in its unit tests, and CI keeps
# its half hour.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]


def arrive(live: Stack, *titles: str) -> None:
    with live.factory.begin() as session:
        upsert_stories(session, [StoryIn(url=f"https://news.example.com/{title.lower().replace(' ', '-')}",
                                         title=title, published_at=utcnow() - timedelta(minutes=1),
                                         topics=["world"]) for title in titles])


def test_two_stories_arriving_send_one_alert_and_a_third_alone_does_not(live: Stack, tmp_path: Path) -> None:
    addresses = seed_readers(live.factory, 3)
    with live.factory.begin() as session:
        newsletter = create_newsletter(session, slug="alerts", name="Alerts", cron=None, timezone="UTC",
                                       allowed_topics=TOPICS, topics=["world"], trigger_stories=2,
                                       trigger_every_minutes=1, subject_template="{{ newsletter }}: breaking")
        newsletter.created_at = utcnow() - timedelta(minutes=5)  # so its alert can be backdated below
        for subscriber in session.scalars(select(Subscriber)):
            set_subscriptions(session, subscriber, [newsletter.id])
        newsletter_id = newsletter.id
    beat = launch_beat(live.env(DIGEST_RELEASE_EVERY_SECONDS="0.5", DIGEST_SWEEP_EVERY_SECONDS="1"),
                       tmp_path / "beat")
    try:
        arrive(live, "Storm Reaches The Coast")
        time.sleep(2)  # four ticks with one story: N is 2
        with live.factory() as session:
            assert session.scalars(select(Edition).where(Edition.newsletter_id == newsletter_id)).all() == []
        arrive(live, "Bridge Closed By Floods")
        copies = {address: wait_for_mail(live, address, subject="Alerts: breaking", timeout=30)
                  for address in addresses}
        with live.factory.begin() as session:  # as if M (1 minute) had passed since the alert was made
            [first] = session.scalars(select(Edition).where(Edition.newsletter_id == newsletter_id)).all()
            first.created_at -= timedelta(minutes=2)
        arrive(live, "Rain Eases Overnight")
        time.sleep(3)  # six ticks with one new story (the first two were sent): nothing
        with live.factory() as session:
            assert len(session.scalars(select(Edition).where(Edition.newsletter_id == newsletter_id)).all()) == 1
        arrive(live, "Roads Reopen")
        later = {address: wait_for_mail(live, address, count=2, subject="Alerts: breaking", timeout=30)[1]
                 for address in addresses}
        live.drain()
    finally:
        beat.terminate()
        beat.wait(timeout=20)
    received = live.smtp.by_recipient()
    assert sorted(received) == sorted(addresses)
    assert all(len(got) == 2 for got in received.values())
    for [copy] in copies.values():
        html = html_part(copy.message)
        assert "Storm Reaches The Coast" in html and "Bridge Closed By Floods" in html
    for copy in later.values():
        html = html_part(copy.message)
        assert "Rain Eases Overnight" in html and "Roads Reopen" in html and "Storm Reaches" not in html
    with live.factory() as session:
        editions = session.scalars(select(Edition).where(Edition.newsletter_id == newsletter_id)).all()
        assert [(e.story_triggered, e.status) for e in editions] == [(True, EditionStatus.SENT)] * 2
