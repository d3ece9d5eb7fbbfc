"""Newsletters on real databases: one edition per occurrence under races, missed and thin
editions skipped, per-newsletter audiences, per-reader dedupe and send-time recheck."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.delivery.pipeline import release_due
from digest.delivery.sender import send_batch
from digest.editions import reader_history
from digest.editions.newsletters import NewsletterError, create_newsletter
from digest.editions.schedules import schedule_editions
from digest.mail.transport import RecordingTransport
from digest.readers import set_subscriptions
from digest.store.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    EditionStory,
    Frequency,
    Newsletter,
    Story,
    StoryStatus,
    Subscriber,
    utcnow,
)
from tests.support.factories import seed_readers, seed_stories
from tests.support.samples import TOPICS
from tests.support.stack import TABLES, in_process_factory

pytestmark = pytest.mark.integration
SETTINGS = Settings(env="test", secret_key="newsletter-tests-secret-0123456789")


@pytest.fixture(params=["postgresql", "sqlite"])
def factory(request, tmp_path) -> Iterator[sessionmaker[Session]]:  # type: ignore[no-untyped-def]
    """Every table emptied (the conftest's `factory` empties only the send tables)."""
    yield from in_process_factory(request, tmp_path / "n.db", TABLES)


def _newsletter(factory: sessionmaker[Session], slug: str, cron: str = "0 7 * * *", **kw: object) -> int:
    with factory.begin() as session:
        newsletter = create_newsletter(session, slug=slug, name=slug.title(), cron=cron, timezone="Europe/Kyiv",
                                       allowed_topics=TOPICS, **kw)  # type: ignore[arg-type]
        newsletter.created_at = utcnow() - timedelta(days=3)
        return newsletter.id


def _send_all(factory: sessionmaker[Session], now=None) -> RecordingTransport:  # type: ignore[no-untyped-def]
    batches: list[tuple[int, int, int]] = []
    release_due(factory, now or utcnow(), 1000, lambda *a: batches.append(a), missed_limit_minutes=180)
    transport = RecordingTransport()
    for batch in batches:
        send_batch(factory, *batch, transport, SETTINGS)
    return transport


def test_two_schedulers_at_once_create_one_edition_per_occurrence(factory) -> None:  # type: ignore[no-untyped-def]
    _newsletter(factory, "morning")
    now = utcnow()
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def run() -> None:
        barrier.wait()
        try:
            with factory.begin() as session:
                schedule_editions(session, now, 48)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with factory() as session:
        occurrences = list(session.scalars(select(Edition.occurrence_at)))
    # 3 days back + 2 days ahead of daily 07:00 Kyiv: 5 occurrences, each once.
    assert len(occurrences) == len(set(occurrences)) == 5
    with factory.begin() as session:
        assert schedule_editions(session, now, 48) == 0  # nothing new on a rerun


def test_missed_occurrences_are_skipped_and_recent_ones_sent_once(factory) -> None:  # type: ignore[no-untyped-def]
    seed_stories(factory)
    seed_readers(factory, 5)
    newsletter_id = _newsletter(factory, "morning", window_hours=24 * 365 * 10)
    with factory.begin() as session:
        schedule_editions(session, utcnow(), 48)
        # Everyone subscribes (readers seeded before the newsletter existed).
        for subscriber in session.scalars(select(Subscriber)):
            set_subscriptions(session, subscriber, [newsletter_id])
        # Pretend the workers were down: make the latest past occurrence 10 minutes late.
        latest_past = session.scalar(select(func.max(Edition.send_at)).where(Edition.send_at <= utcnow()))
        session.execute(update(Edition).where(Edition.send_at == latest_past)
                        .values(send_at=utcnow() - timedelta(minutes=10)))
    transport = _send_all(factory)
    with factory() as session:
        statuses = [e.status for e in session.scalars(select(Edition).order_by(Edition.send_at))]
        reasons = [e.status_reason for e in session.scalars(select(Edition).where(Edition.status == EditionStatus.SKIPPED))]
    assert statuses.count(EditionStatus.SKIPPED) == 2  # the two older days
    assert statuses.count(EditionStatus.SENT) == 1
    assert statuses.count(EditionStatus.SCHEDULED) == 2  # the two ahead
    assert all(r and r.startswith("missed") for r in reasons)
    assert len(transport.sent) == 5
    assert len(_send_all(factory).sent) == 0  # never twice


def test_thin_edition_is_skipped_with_a_reason(factory) -> None:  # type: ignore[no-untyped-def]
    seed_stories(factory)
    seed_readers(factory, 3)
    _newsletter(factory, "sportsdesk", topics="sports", min_stories=3, window_hours=24 * 365 * 10)
    with factory.begin() as session:
        schedule_editions(session, utcnow(), 1)
        session.execute(update(Edition).where(Edition.send_at <= utcnow()).values(send_at=utcnow()))
        session.execute(update(Edition).where(Edition.send_at < utcnow() - timedelta(hours=1))
                        .values(status=EditionStatus.CANCELLED))
    assert len(_send_all(factory).sent) == 0
    with factory() as session:
        skipped = session.scalars(select(Edition).where(Edition.status == EditionStatus.SKIPPED)).all()
    assert skipped and "too thin" in (skipped[-1].status_reason or "")


def _one_off(factory: sessionmaker[Session], newsletter_id: int | None, max_stories: int = 3) -> int:
    with factory.begin() as session:
        edition = Edition(subject="s", send_at=utcnow() - timedelta(seconds=1), status=EditionStatus.SCHEDULED,
                          max_stories=max_stories, window_hours=24 * 365 * 10, newsletter_id=newsletter_id)
        session.add(edition)
        session.flush()
        return edition.id


def test_audiences_dedupe_and_retraction(factory) -> None:  # type: ignore[no-untyped-def]
    seed_stories(factory)
    addresses = seed_readers(factory, 4)
    morning = _newsletter(factory, "morning")
    weekly = _newsletter(factory, "weekly", cron="0 17 * * 5")
    with factory.begin() as session:
        readers = list(session.scalars(select(Subscriber).order_by(Subscriber.id)))
        set_subscriptions(session, readers[0], [morning, weekly])
        set_subscriptions(session, readers[1], [morning])
        set_subscriptions(session, readers[2], [weekly])
        set_subscriptions(session, readers[3], [])  # left both newsletters

    first = _one_off(factory, morning)
    sent = _send_all(factory).sent
    assert sorted(rcpt for _, rcpt, _ in sent) == sorted(addresses[:2])

    # The weekly edition would carry the same top stories: reader 0 already had them, so
    # they get the next ones instead; reader 2 (weekly only) gets the top ones.
    second = _one_off(factory, weekly)
    with factory.begin() as session:
        frozen_first = list(session.scalars(select(EditionStory.story_id).where(EditionStory.edition_id == first)
                                            .order_by(EditionStory.position)))
    _send_all(factory)
    with factory() as session:
        got = {sid: ids for sid, ids in session.execute(
            select(Delivery.subscriber_id, Delivery.story_ids).where(Delivery.edition_id == second))}
        had = {sid: ids for sid, ids in session.execute(
            select(Delivery.subscriber_id, Delivery.story_ids).where(Delivery.edition_id == first))}
    r0, r2 = readers[0].id, readers[2].id
    assert set(got[r0]).isdisjoint(had[r0])
    assert got[r2] == frozen_first[:3]
    assert len(got[r0]) == 3

    # A story retracted after planning is pulled before the batch goes, and recorded.
    third = _one_off(factory, None)
    batches: list[tuple[int, int, int]] = []
    release_due(factory, utcnow(), 1000, lambda *a: batches.append(a))
    with factory.begin() as session:
        top = session.scalar(select(EditionStory.story_id).where(EditionStory.edition_id == third)
                             .order_by(EditionStory.position))
        session.execute(update(Story).where(Story.id == top).values(status=StoryStatus.RETRACTED))
    transport = RecordingTransport()
    for batch in batches:
        send_batch(factory, *batch, transport, SETTINGS)
    with factory() as session:
        pulled = session.get_one(EditionStory, (third, top))
        carried = list(session.scalars(select(Delivery.story_ids).where(Delivery.edition_id == third)))
    assert pulled.pulled_at is not None and pulled.pulled_reason == "retracted after planning"
    assert carried and all(top not in ids for ids in carried)


def test_weekly_and_paused_readers_are_left_out(factory) -> None:  # type: ignore[no-untyped-def]
    seed_stories(factory)
    addresses = seed_readers(factory, 3)
    with factory.begin() as session:
        readers = list(session.scalars(select(Subscriber).order_by(Subscriber.id)))
        readers[1].frequency = Frequency.WEEKLY
        readers[2].paused_until = utcnow() + timedelta(days=14)
    _one_off(factory, None)
    assert sorted(r for _, r, _ in _send_all(factory).sent) == sorted(addresses[:2])
    _one_off(factory, None)
    # The weekly reader got one three seconds ago: not again this week.
    assert [r for _, r, _ in _send_all(factory).sent] == [addresses[0]]


def _local_time_edition(factory: sessionmaker[Session], zones: list[str | None]) -> tuple[list[str], Edition]:
    """A newsletter at 07:00 in each reader's own zone (Kyiv for readers without one), one
    reader per zone given, and its edition for 1 December 2026 made on 30 November."""
    from datetime import UTC, datetime

    seed_stories(factory)
    addresses = seed_readers(factory, len(zones))
    with factory.begin() as session:
        newsletter = create_newsletter(session, slug="local", name="Local", cron="0 7 * * *",
                                       timezone="Europe/Kyiv", allowed_topics=TOPICS, local_time=True,
                                       window_hours=24 * 365 * 10)
        newsletter.created_at = datetime(2026, 11, 30, 12, tzinfo=UTC)
        for subscriber, zone in zip(session.scalars(select(Subscriber).order_by(Subscriber.id)), zones, strict=True):
            subscriber.timezone = zone
            set_subscriptions(session, subscriber, [newsletter.id])
        schedule_editions(session, datetime(2026, 11, 30, 12, tzinfo=UTC), 24)
        edition = session.scalars(select(Edition)).one()
        session.expunge(edition)
    return addresses, edition


def test_local_time_delivery_releases_each_zone_at_its_own_hour(factory) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    zones = ["Asia/Tokyo", "Europe/Kyiv", "America/New_York", None]
    addresses, edition = _local_time_edition(factory, zones)
    assert (edition.local_date, edition.local_time) == ("2026-12-01", "07:00")
    # 07:00 at UTC+14 on 1 December is 17:00 UTC on 30 November.
    assert edition.send_at == datetime(2026, 11, 30, 17, tzinfo=UTC)

    def run_at(now: datetime) -> list[str]:
        batches: list[tuple[int, int, int]] = []
        release_due(factory, now, 1000, lambda *a: batches.append(a))
        if not batches:
            with factory() as session:
                batches = [(edition.id, 0, 10**9)]
        transport = RecordingTransport()
        for batch in batches:
            send_batch(factory, *batch, transport, SETTINGS, clock=lambda: now)
        return [rcpt for _, rcpt, _ in transport.sent]

    tokyo, kyiv, new_york, default = addresses
    assert run_at(datetime(2026, 11, 30, 21, 59, tzinfo=UTC)) == []        # 06:59 in Tokyo
    assert run_at(datetime(2026, 11, 30, 22, 0, tzinfo=UTC)) == [tokyo]    # 07:00 in Tokyo
    assert sorted(run_at(datetime(2026, 12, 1, 5, 0, tzinfo=UTC))) == sorted([kyiv, default])  # 07:00 Kyiv
    assert run_at(datetime(2026, 12, 1, 11, 59, tzinfo=UTC)) == []
    assert run_at(datetime(2026, 12, 1, 12, 0, tzinfo=UTC)) == [new_york]   # 07:00 in New York
    with factory() as session:
        assert session.get_one(Edition, edition.id).status == EditionStatus.SENT


def test_values_past_their_columns_are_refused_by_name_not_by_the_database(factory) -> None:  # type: ignore[no-untyped-def]
    common = {"slug": "long", "name": "Long", "cron": "0 7 * * *", "timezone": "UTC", "allowed_topics": []}
    too_long = [("sender_name", "s" * 121, "sender name"), ("subject_template", "t" * 301, "subject template"),
                ("cron", "0 " + ",".join(["7"] * 60) + " * * *", "cron expression"), ("name", "n" * 121, "name")]
    for field, value, said in too_long:
        with factory.begin() as session, pytest.raises(NewsletterError, match=said):
            create_newsletter(session, **{**common, field: value})
    with factory.begin() as session:  # at the limits: taken
        create_newsletter(session, **{**common, "sender_name": "s" * 120, "subject_template": "t" * 300})
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Newsletter)) == 1


def test_dedupe_reads_only_what_could_hold_a_candidate(factory) -> None:  # type: ignore[no-untyped-def]
    """A reader's deliveries older than the oldest candidate story cannot carry it: they are
    not read (so dedupe costs the same after a year of daily editions as after a week);
    a delivery since then that carried a candidate is."""
    seed_stories(factory)
    seed_readers(factory, 1)
    now = utcnow()
    with factory.begin() as session:
        reader = session.scalars(select(Subscriber)).one()
        stories = list(session.scalars(select(Story).order_by(Story.id)))[:3]
        for story in stories:
            story.created_at = now - timedelta(days=2)
        old = Edition(subject="A year ago", send_at=now - timedelta(days=365), status=EditionStatus.SENT, max_stories=5,
                      window_hours=48)
        recent = Edition(subject="Yesterday", send_at=now - timedelta(days=1), status=EditionStatus.SENT, max_stories=5,
                         window_hours=48)
        session.add_all([old, recent])
        session.flush()
        session.add_all([
            Delivery(edition_id=old.id, subscriber_id=reader.id, status=DeliveryStatus.SENT,
                     sent_at=now - timedelta(days=100), story_ids=[stories[0].id]),
            Delivery(edition_id=recent.id, subscriber_id=reader.id, status=DeliveryStatus.SENT,
                     sent_at=now - timedelta(days=1), story_ids=[stories[1].id, 999_999])])
        ids, reader_id = [s.id for s in stories], reader.id
    with factory() as session:
        assert reader_history(session, 0, [reader_id], now, ids) == {reader_id: {ids[1]}}
        assert reader_history(session, 0, [reader_id], now) == {reader_id: {ids[0], ids[1], 999_999}}
        assert reader_history(session, 0, [reader_id], now, []) == {}


def test_a_subject_test_in_local_time_keeps_each_zone_at_its_hour_and_sends_nobody_twice(factory) -> None:  # type: ignore[no-untyped-def]
    """The wait counts from the release (the first zone's hour): at the decision, one zone's
    test copies are out and the other's still wait for their hour; the rest get the winner
    and each copy still leaves at its reader's hour, once."""
    from collections import Counter
    from datetime import UTC, datetime
    from email import message_from_bytes

    import redis

    from digest import actions
    from digest.editions import ab
    from tests.support.stack import REDIS_URL

    zones = ["Asia/Tokyo"] * 4 + ["America/New_York"] * 4
    addresses, edition = _local_time_edition(factory, zones)
    zone_of = dict(zip(addresses, zones, strict=True))
    with factory.begin() as session:
        ab.set_ab(session, edition.id, ab.AbPlan("The second subject", 50, 30))
    first_subject = edition.subject
    copies: list[tuple[str, str]] = []  # (reader, subject), every copy sent

    def run_at(now: datetime) -> list[str]:
        batches: list[tuple[int, int, int]] = []
        release_due(factory, now, 1000, lambda *a: batches.append(a))
        transport = RecordingTransport()
        for batch in batches or [(edition.id, 0, 10**9)]:
            send_batch(factory, *batch, transport, SETTINGS, clock=lambda: now)
        sent = [(rcpt, str(message_from_bytes(raw)["Subject"])) for _, rcpt, raw in transport.sent]
        copies.extend(sent)
        return [rcpt for rcpt, _ in sent]

    def variants() -> Counter[int | None]:
        with factory() as session:
            return Counter(session.scalars(select(Delivery.variant).where(Delivery.edition_id == edition.id)))

    tokyo_hour = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)  # 07:00 in Tokyo
    test_copies = run_at(tokyo_hour)
    assert variants() == {None: 4, 1: 2, 2: 2}  # half the audience in the test, a subject each
    assert test_copies and all(zone_of[a] == "Asia/Tokyo" for a in test_copies)  # New York's wait for their hour

    deps = actions.Deps(factory, SETTINGS, lambda *a: None, lambda *a: None, lambda: None)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert actions.ab_tests.decide_due(deps, client, tokyo_hour + timedelta(minutes=29)) == []
        assert actions.ab_tests.decide_due(deps, client, tokyo_hour + timedelta(minutes=31)) == [edition.id]
        assert actions.ab_tests.decide_due(deps, client, tokyo_hour + timedelta(minutes=32)) == []  # once
    finally:
        client.close()
    assert variants() == {1: 6, 2: 2}  # no clicks: too few to tell, the first subject to the rest

    rest_in_tokyo = run_at(tokyo_hour + timedelta(minutes=31))
    assert sorted(test_copies + rest_in_tokyo) == sorted(a for a in addresses if zone_of[a] == "Asia/Tokyo")
    assert run_at(datetime(2026, 12, 1, 11, 59, tzinfo=UTC)) == []  # 06:59 in New York
    in_new_york = run_at(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    assert sorted(in_new_york) == sorted(a for a in addresses if zone_of[a] == "America/New_York")

    assert Counter(reader for reader, _ in copies) == dict.fromkeys(addresses, 1)  # everyone, once
    with factory() as session:
        variant_of = {email: variant for email, variant in session.execute(
            select(Subscriber.email, Delivery.variant).join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Delivery.edition_id == edition.id))}
        assert session.get_one(Edition, edition.id).status == EditionStatus.SENT
    for reader, subject in copies:  # each copy carried its delivery's subject
        assert subject == ("The second subject" if variant_of[reader] == 2 else first_subject), (reader, subject)
