"""The numbers behind the charts (digest.observe.charts) and the ETA, on both databases:
buckets of whole minutes and days counted in SQL, from rows placed at known times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from digest.observe import edition_deliveries, edition_health, newsletter_reach, readers_by_day, send_rate
from digest.store import (
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Newsletter,
    NewsletterSubscription,
    Subscriber,
)
from tests.support.factories import seed_readers

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 2, 12, 30, 30, tzinfo=UTC)


@pytest.fixture
def db(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """`factory` (both databases, the send tables emptied) with the reader and newsletter
    tables these charts read emptied too."""
    with factory.begin() as session:
        for model in (ConsentEvent, NewsletterSubscription, Delivery, Edition, Newsletter):
            session.execute(delete(model))
    return factory


def reader_ids(factory: sessionmaker[Session]) -> list[int]:
    with factory() as session:
        return list(session.scalars(select(Subscriber.id).order_by(Subscriber.id)))


def edition(session: Session, status: EditionStatus = EditionStatus.SENDING, **extra: object) -> Edition:
    row = Edition(**{"subject": "Noon", "send_at": NOW - timedelta(minutes=10), "status": status, "max_stories": 5,
                     "window_hours": 48, "started_at": NOW - timedelta(minutes=10), **extra})
    session.add(row)
    session.flush()
    return row


def deliveries(session: Session, edition_id: int, readers: list[int], *placed: tuple[DeliveryStatus, datetime | None]) -> None:
    for reader, (status, at) in zip(readers, placed, strict=False):
        session.add(Delivery(edition_id=edition_id, subscriber_id=reader, status=status, attempted_at=at,
                             sent_at=at if status == DeliveryStatus.SENT else None))


def test_messages_per_minute_are_counted_in_their_minute(db: sessionmaker[Session]) -> None:
    factory = db
    seed_readers(factory, 8)
    readers = reader_ids(factory)
    with factory.begin() as session:
        e = edition(session)
        deliveries(session, e.id, readers,
                   (DeliveryStatus.SENT, NOW - timedelta(minutes=2, seconds=10)),   # 12:28
                   (DeliveryStatus.SENT, NOW - timedelta(minutes=2, seconds=20)),   # 12:28
                   (DeliveryStatus.SENT, NOW - timedelta(seconds=5)),               # 12:30
                   (DeliveryStatus.FAILED, NOW - timedelta(seconds=20)),            # 12:30
                   (DeliveryStatus.BOUNCED, NOW - timedelta(minutes=5)),            # 12:25
                   (DeliveryStatus.SENT, NOW - timedelta(hours=2)),                 # outside the hour
                   (DeliveryStatus.QUEUED, None))                                   # not yet
        edition_id = e.id
    with factory() as session:
        chart = send_rate(session, [edition_id], NOW)
    assert len(chart.x) == 60 and chart.x[-1] == datetime(2026, 12, 2, 12, 30, tzinfo=UTC)
    by_minute = {at.strftime("%H:%M"): (chart.lines["sent"][i], chart.lines["failed"][i], chart.lines["bounced"][i])
                 for i, at in enumerate(chart.x)}
    assert by_minute["12:28"] == (2, 0, 0)
    assert by_minute["12:30"] == (1, 1, 0)
    assert by_minute["12:25"] == (0, 0, 1)
    assert sum(chart.lines["sent"]) == 3
    # The table a screen reader gets: only the minutes with something in them.
    assert chart.rows() == [("12:25", [0, 0, 1]), ("12:28", [2, 0, 0]), ("12:30", [1, 1, 0])]
    with factory() as session:
        assert send_rate(session, [], NOW).empty


def test_an_editions_deliveries_span_its_send(db: sessionmaker[Session]) -> None:
    factory = db
    seed_readers(factory, 3)
    readers = reader_ids(factory)
    with factory.begin() as session:
        e = edition(session, EditionStatus.SENT, finished_at=NOW - timedelta(minutes=7))
        deliveries(session, e.id, readers, (DeliveryStatus.SENT, NOW - timedelta(minutes=9, seconds=50)),
                   (DeliveryStatus.SENT, NOW - timedelta(minutes=8)), (DeliveryStatus.FAILED, NOW - timedelta(minutes=7)))
        never = edition(session, EditionStatus.SCHEDULED, )
        never.started_at = None
        ids = e.id, never.id
    with factory() as session:
        chart = edition_deliveries(session, session.get(Edition, ids[0]), NOW)
        assert edition_deliveries(session, session.get(Edition, ids[1]), NOW) is None
    assert chart is not None and chart.x[0] == datetime(2026, 12, 2, 12, 20, tzinfo=UTC)
    assert chart.x[-1] == datetime(2026, 12, 2, 12, 23, tzinfo=UTC)
    assert (sum(chart.lines["sent"]), sum(chart.lines["failed"])) == (2, 1)


def test_readers_per_day_per_newsletter(db: sessionmaker[Session]) -> None:
    factory = db
    seed_readers(factory, 4)
    readers = reader_ids(factory)
    with factory.begin() as session:
        mine, other = Newsletter(slug="mine", name="Mine", timezone="UTC", subject_template="{date}"), Newsletter(slug="other", name="Other", timezone="UTC", subject_template="{date}")
        session.add_all([mine, other])
        session.flush()
        session.add_all([NewsletterSubscription(newsletter_id=mine.id, subscriber_id=r) for r in readers[:3]]
                        + [NewsletterSubscription(newsletter_id=other.id, subscriber_id=readers[3])])
        for reader, kind, days_ago in [(readers[0], "subscribe", 2), (readers[0], "confirm", 2),
                                       (readers[1], "subscribe", 0), (readers[2], "unsubscribe", 0),
                                       (readers[3], "subscribe", 0), (readers[1], "preferences", 0),
                                       (readers[2], "subscribe", 40)]:
            session.add(ConsentEvent(subscriber_id=reader, kind=kind, channel="web", at=NOW - timedelta(days=days_ago)))
        ids = mine.id, other.id
    with factory() as session:
        chart = readers_by_day(session, ids[0], NOW)
        everyone = readers_by_day(session, None, NOW)
    assert len(chart.x) == 30 and chart.x[-1] == datetime(2026, 12, 2, tzinfo=UTC)
    assert chart.lines["sign-ups"][-1] == 1 and chart.lines["sign-ups"][-3] == 1
    assert chart.lines["confirmations"][-3] == 1 and chart.lines["unsubscribes"][-1] == 1
    assert sum(chart.lines["sign-ups"]) == 2  # the one 40 days ago is outside, the other newsletter's is not here
    assert sum(everyone.lines["sign-ups"]) == 3
    assert chart.rows()[-1] == ("2 Dec", [1, 0, 1, 0, 0])


def test_a_newsletters_reach_per_edition_oldest_first(db: sessionmaker[Session]) -> None:
    factory = db
    seed_readers(factory, 5)
    readers = reader_ids(factory)
    with factory.begin() as session:
        letter = Newsletter(slug="reach", name="Reach", timezone="UTC", subject_template="{date}")
        session.add(letter)
        session.flush()
        first = edition(session, EditionStatus.SENT, newsletter_id=letter.id, subject="First")
        first.send_at = NOW - timedelta(days=2)
        second = edition(session, EditionStatus.SENT, newsletter_id=letter.id, subject="Second")
        edition(session, EditionStatus.SCHEDULED, newsletter_id=letter.id, subject="Not yet")
        deliveries(session, first.id, readers[:2], (DeliveryStatus.SENT, NOW), (DeliveryStatus.BOUNCED, NOW))
        deliveries(session, second.id, readers, *[(DeliveryStatus.SENT, NOW)] * 4, (DeliveryStatus.FAILED, NOW))
        letter_id = letter.id
    with factory() as session:
        chart = newsletter_reach(session, letter_id)
    assert chart.x_labels == ["30 Nov · First", "2 Dec · Second"]
    assert chart.lines == {"sent": [1, 4], "failed": [0, 1], "bounced": [1, 0]}


def test_the_eta_follows_the_rate_the_edition_really_sent_at(db: sessionmaker[Session]) -> None:
    factory = db
    """20 s into a send that has done 100 (5 a second) with 300 left: 60 s, not the 180 s a
    one-minute window diluted by the 40 s before the send began would say."""
    seed_readers(factory, 400)
    readers = reader_ids(factory)
    with factory.begin() as session:
        e = edition(session)
        e.started_at = NOW - timedelta(seconds=20)
        deliveries(session, e.id, readers, *[(DeliveryStatus.SENT, NOW - timedelta(seconds=20 - i * 0.2)) for i in range(100)],
                   *[(DeliveryStatus.QUEUED, None)] * 300)
        edition_id = e.id
    with factory() as session:
        [health] = edition_health(session, [session.get(Edition, edition_id)], NOW)
    assert health.pending == 300 and health.eta_seconds == 60
