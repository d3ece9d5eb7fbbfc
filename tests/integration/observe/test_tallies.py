"""A sent edition's tally (digest.editions.tallies) says what its rows say, at every step of
its life after it finished: counted when it finishes, moved by a bounce report, dropped when
it is reopened (the rows then counted live), counted again when it finishes again. What the
dashboards read (observe.delivery_counts, /metrics' per-newsletter gauges) equals a count of
the rows throughout, on both databases."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.delivery import ledger
from digest.editions import lifecycle
from digest.observe.health import delivery_counts
from digest.store import Delivery, DeliveryStatus, Edition, EditionStatus, EditionTally, Subscriber, utcnow
from tests.support.factories import seed_readers

pytestmark = pytest.mark.integration


def rows(session: Session, edition_id: int) -> Counter[str]:
    return Counter({DeliveryStatus(s).value: n for s, n in session.execute(
        select(Delivery.status, func.count()).where(Delivery.edition_id == edition_id).group_by(Delivery.status))})


def tally(session: Session, edition_id: int) -> EditionTally | None:
    return session.get(EditionTally, edition_id)


def send_the_queued(session: Session, edition_id: int, now: datetime) -> None:
    """What the worker would do with the rest: every queued delivery sent."""
    session.execute(Delivery.__table__.update().where(Delivery.edition_id == edition_id,
                                                      Delivery.status == DeliveryStatus.QUEUED)
                    .values(status=DeliveryStatus.SENT, sent_at=now))


def test_a_tally_follows_its_edition(factory: sessionmaker[Session]) -> None:
    seed_readers(factory, 6)
    now = utcnow()
    with factory.begin() as session:
        session.execute(delete(EditionTally))
        ids = list(session.scalars(select(Subscriber.id).order_by(Subscriber.id)))
        edition = Edition(subject="Tallied", send_at=now - timedelta(minutes=5), status=EditionStatus.SENDING,
                          max_stories=5, window_hours=48, started_at=now - timedelta(minutes=5))
        session.add(edition)
        session.flush()
        statuses = [DeliveryStatus.SENT] * 4 + [DeliveryStatus.FAILED, DeliveryStatus.QUEUED]
        session.add_all([Delivery(edition_id=edition.id, subscriber_id=r, status=s, attempted_at=now,
                                  sent_at=now if s == DeliveryStatus.SENT else None)
                         for r, s in zip(ids, statuses, strict=True)])
        edition_id = edition.id

    with factory.begin() as session:
        assert not lifecycle.finish_if_complete(session, edition_id, now)  # one still queued: not yet
        assert tally(session, edition_id) is None
        send_the_queued(session, edition_id, now)
        assert lifecycle.finish_if_complete(session, edition_id, now)
    with factory() as session:
        counted = tally(session, edition_id)
        assert counted is not None and (counted.sent, counted.failed, counted.bounced) == (5, 1, 0)
        assert delivery_counts(session, [edition_id])[edition_id] == rows(session, edition_id)
        first_sent = session.scalar(select(Delivery.id).where(Delivery.edition_id == edition_id,
                                                              Delivery.status == DeliveryStatus.SENT))

    with factory.begin() as session:  # a bounce report, twice (the second changes nothing)
        assert ledger.bounce_sent(session, first_sent, "550 5.1.1 no such user")
        assert not ledger.bounce_sent(session, first_sent, "550 5.1.1 no such user")
    with factory() as session:
        counted = tally(session, edition_id)
        assert counted is not None and (counted.sent, counted.bounced) == (4, 1)
        assert delivery_counts(session, [edition_id])[edition_id] == rows(session, edition_id)

    with factory.begin() as session:  # retry the failed: counted live while it sends again
        assert lifecycle.reopen(session, edition_id, now, "retry-failed") == (True, True)
        assert tally(session, edition_id) is None
        ledger.requeue_failed(session, edition_id)
        assert delivery_counts(session, [edition_id])[edition_id] == rows(session, edition_id)
        assert rows(session, edition_id)["queued"] == 1
    with factory.begin() as session:
        send_the_queued(session, edition_id, now)
        assert lifecycle.finish_if_complete(session, edition_id, now)
    with factory() as session:
        counted = tally(session, edition_id)
        assert counted is not None and (counted.sent, counted.failed, counted.bounced) == (5, 0, 1)
        assert delivery_counts(session, [edition_id])[edition_id] == rows(session, edition_id)
