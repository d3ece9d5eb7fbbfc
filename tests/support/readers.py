"""Readers with a history to look at, for the readers' pages, API and browser tests: two
newsletters, three sent editions, and five readers in five states with deliveries, a soft
and a hard bounce, a complaint and their consent events; and what the audit log and the
consent ledger then say about them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.readers import RequestContext, add_subscriber, record, set_subscriptions
from digest.store.models import (
    AuditEntry,
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    ErrorCode,
    Newsletter,
    Notice,
    NoticeStatus,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from tests.support.samples import TOPICS

if TYPE_CHECKING:
    from tests.support.stack import Stack

BOUNCE_ERROR = "550 5.1.1 <bob@example.org>: mailbox unavailable"
SOFT_ERROR = "soft bounce (dsn): 4.2.2 mailbox full"


@dataclass(frozen=True)
class Roster:
    """Ids: Ann (active, morning, politics, a soft bounce), Bob (bounced, evening), Cara
    (pending), Dan (left by one-click), Eve (complained); the newsletters and editions."""

    ann: int
    bob: int
    cara: int
    dan: int
    eve: int
    morning: int
    evening: int
    editions: tuple[int, ...]

    @property
    def readers(self) -> dict[str, int]:
        return {"ann": self.ann, "bob": self.bob, "cara": self.cara, "dan": self.dan, "eve": self.eve}


def _reader(session: Session, address: str, name: str, topics: str | None, confirmed: bool) -> Subscriber:
    return add_subscriber(session, address, allowed_topics=TOPICS, name=name, topics=topics, confirmed=confirmed,
                          consent_source="form")


def seed_roster(factory: sessionmaker[Session]) -> Roster:
    now = utcnow()
    with factory.begin() as session:
        morning = Newsletter(slug="morning", name="Morning Briefing", cron="0 7 * * *", timezone="UTC",
                             subject_template="{{ newsletter }}")
        evening = Newsletter(slug="evening", name="Evening Edition", cron="0 18 * * *", timezone="UTC",
                             subject_template="{{ newsletter }}")
        session.add_all([morning, evening])
        session.flush()
        ann = _reader(session, "ann.lee@example.com", "Ann Lee", "politics", True)
        bob = _reader(session, "bob@example.org", "Bob Stone", "world,sports", True)
        cara = _reader(session, "cara@example.com", "Cara Diaz", None, False)
        dan = _reader(session, "dan@example.net", "Dan Wu", "business", True)
        eve = _reader(session, "eve@example.com", "Eve Hart", None, True)
        set_subscriptions(session, ann, [morning.id])
        set_subscriptions(session, bob, [evening.id])
        editions = [Edition(subject=subject, send_at=now - timedelta(days=days), status=EditionStatus.SENT,
                            newsletter_id=morning.id)
                    for subject, days in (("Monday briefing", 3), ("Tuesday briefing", 2), ("Wednesday briefing", 1))]
        session.add_all(editions)
        session.flush()
        sent = [(ann, editions[0], DeliveryStatus.SENT, None, None),
                (ann, editions[1], DeliveryStatus.SENT, ErrorCode.SOFT_BOUNCE, SOFT_ERROR),
                (ann, editions[2], DeliveryStatus.SENT, None, None),
                (bob, editions[1], DeliveryStatus.BOUNCED, ErrorCode.HARD_BOUNCE, BOUNCE_ERROR),
                (dan, editions[0], DeliveryStatus.SENT, None, None),
                (dan, editions[2], DeliveryStatus.SKIPPED, ErrorCode.READER_LEFT, "reader left"),
                (eve, editions[0], DeliveryStatus.SENT, None, None)]
        session.add_all(Delivery(edition_id=edition.id, subscriber_id=reader.id, status=status,
                                 sent_at=edition.send_at if status != DeliveryStatus.SKIPPED else None,
                                 attempted_at=edition.send_at, error_code=code, last_error=error)
                        for reader, edition, status, code, error in sent)
        session.add(Notice(subscriber_id=cara.id, kind="confirm", status=NoticeStatus.SENT,
                           sent_at=now - timedelta(hours=2), created_at=now - timedelta(hours=2)))
        bob.status = SubscriberStatus.BOUNCED
        dan.status, dan.unsubscribed_at, dan.unsubscribe_channel = SubscriberStatus.UNSUBSCRIBED, now, "one-click"
        record(session, dan, "unsubscribe", RequestContext(channel="one-click"))
        eve.status = SubscriberStatus.COMPLAINED
        record(session, eve, "complaint", RequestContext(channel="arf"), detail={"feedback_type": "abuse"})
        return Roster(ann.id, bob.id, cara.id, dan.id, eve.id, morning.id, evening.id,
                      tuple(e.id for e in editions))


def audit_rows(live: Stack, prefix: str = "reader") -> list[tuple[str, str, str | None, str, dict[str, Any] | None]]:
    """(action, target, via, actor, detail) of the audit rows whose action starts with `prefix`."""
    with live.factory() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id))
        return [(r.action, r.target, r.via, r.actor, r.detail) for r in rows]


def consent_events(live: Stack, reader_id: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(kind, channel, detail) of a reader's consent events, oldest first."""
    with live.factory() as session:
        rows = session.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == reader_id)
                               .order_by(ConsentEvent.id))
        return [(c.kind, c.channel, c.detail) for c in rows]


def reader_status(live: Stack, reader_id: int) -> str:
    with live.factory() as session:
        return session.get_one(Subscriber, reader_id).status.value


def big_csv(rows: int, *, bad: dict[int, str] | None = None) -> str:
    """A CSV of `rows` good readers (bulk0@… upwards) with the `bad` rows (by their line in
    the file) put in where they fall."""
    lines = ["email,name,topics"]
    good = 0
    bad = bad or {}
    while len(lines) < rows + len(bad) + 1:
        line_number = len(lines) + 1
        if line_number in bad:
            lines.append(bad[line_number])
        else:
            lines.append(f"bulk{good}@example.com,Bulk {good},world")
            good += 1
    return "\n".join(lines) + "\n"
