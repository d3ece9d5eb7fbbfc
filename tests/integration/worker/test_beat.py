"""Two real beat processes: one edition goes out once."""

from __future__ import annotations

import time

import pytest

from tests.support.factories import due_edition, seed_readers, seed_stories
from tests.support.processes import launch_beat
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def test_two_beats_release_an_edition_exactly_once(live: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seed_stories(live.factory)
    addresses = seed_readers(live.factory, 80)
    edition_id = due_edition(live.factory)
    beats = [
        launch_beat(live.env(DIGEST_RELEASE_EVERY_SECONDS="0.5", DIGEST_SWEEP_EVERY_SECONDS="1"),
                    tmp_path / f"beat-{n}")
        for n in range(2)
    ]
    try:
        live.wait_for_edition(edition_id, timeout=60)
        live.drain()
    finally:
        for beat in beats:
            beat.terminate()
            beat.wait(timeout=20)
    received = live.smtp.by_recipient()
    assert sorted(received) == sorted(addresses)
    assert all(len(copies) == 1 for copies in received.values())


def test_two_beats_schedule_a_newsletter_once_per_occurrence(live: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two beats run the database-driven schedule at once: each occurrence becomes one
    edition, the one just due goes out once, and later ones wait."""
    from datetime import timedelta

    from sqlalchemy import select

    from digest.editions.newsletters import create_newsletter
    from digest.readers import set_subscriptions
    from digest.store.models import Edition, Subscriber, utcnow

    seed_stories(live.factory)
    addresses = seed_readers(live.factory, 20)
    with live.factory.begin() as session:
        newsletter = create_newsletter(
            session, slug="every-five", name="Every Five", cron="*/5 * * * *", timezone="Europe/Kyiv",
            allowed_topics=["politics", "world", "business", "technology", "science", "health", "sports", "culture"],
            window_hours=24 * 365 * 10)
        # Created six minutes ago: one or two occurrences are already due.
        newsletter.created_at = utcnow() - timedelta(minutes=6)
        for subscriber in session.scalars(select(Subscriber)):
            set_subscriptions(session, subscriber, [newsletter.id])
        newsletter_id = newsletter.id
    env = live.env(DIGEST_RELEASE_EVERY_SECONDS="0.5", DIGEST_SWEEP_EVERY_SECONDS="1", DIGEST_SCHEDULE_AHEAD_HOURS="1")
    beats = [launch_beat(env, tmp_path / f"beat-{n}") for n in range(2)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(live.smtp.messages) < len(addresses):
            time.sleep(0.2)
        time.sleep(3)  # a second due occurrence, if there is one, goes out too
        time.sleep(2)  # both beats keep running: nothing more may be created or sent
        live.drain()
    finally:
        for beat in beats:
            beat.terminate()
            beat.wait(timeout=20)
    with live.factory() as session:
        editions = list(session.scalars(select(Edition).where(Edition.newsletter_id == newsletter_id)))
    occurrences = [e.occurrence_at for e in editions]
    assert len(occurrences) == len(set(occurrences)) >= 12  # one per 5 minutes for the next hour
    due = [e.status.value for e in editions if e.send_at <= utcnow()]
    assert due and set(due) == {"sent"}
    received = live.smtp.by_recipient()
    assert sorted(received) == sorted(addresses)
    assert all(len(copies) == len(due) for copies in received.values())  # one per occurrence
